module github.com/yzpay/yzpay/services/gateway

go 1.26.0

require github.com/yzpay/yzpay/shared v0.0.0

replace (
	github.com/yzpay/yzpay/migrations => ../../migrations
	github.com/yzpay/yzpay/shared => ../../shared
)
