module github.com/yzpay/yzpay/migrations

go 1.26.0
