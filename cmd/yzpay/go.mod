module github.com/yzpay/yzpay/cmd/yzpay

go 1.26.0

require github.com/yzpay/yzpay/shared v0.0.0

require gopkg.in/yaml.v3 v3.0.1 // indirect

replace (
	github.com/yzpay/yzpay/migrations => ../../migrations
	github.com/yzpay/yzpay/shared => ../../shared
)
