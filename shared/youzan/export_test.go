package youzan

// ReadTradeGet exposes the trade.get answer reader to the benchmarks.
var ReadTradeGet = readTradeGet
