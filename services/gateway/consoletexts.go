package gateway

// consoleTexts are the operator console's words, Chinese by default and
// English when the browser prefers it (Accept-Language).
var consoleTexts = map[string]map[string]string{
	"zh": {
		"title": "yzpay 运营后台", "login": "登录", "password": "管理密钥 (ADMIN_API_KEY)", "name": "您的名字（记入审计日志）",
		"badlogin": "密钥错误，登录被拒绝。", "toomany": "失败次数过多，请稍后再试。", "logout": "退出",
		"unavailable": "服务暂时不可用，请稍后刷新。", "noorder": "找不到该订单。",
		"orders": "订单", "deliveries": "通知投递", "search": "搜索", "searchph": "订单号 / 二维码 ID / 交易号",
		"status": "状态", "any": "全部", "from": "起始日期", "to": "截止日期", "filter": "筛选", "next": "下一页 →",
		"order": "订单", "name_": "商品", "amount": "金额", "created": "创建时间", "paid_at": "支付时间", "tid": "交易号",
		"qrid": "二维码 ID", "payment": "实付", "paytype": "支付方式", "buyer": "买家",
		"nomatch": "没有找到匹配的订单。", "none": "没有记录。",
		"s_payments": "今日支付笔数", "s_amount": "今日收款 (元)", "s_failing": "失败中的通知", "s_lag": "消费积压",
		"s_yz": "有赞错误率 (15 分钟)", "live": "实时",
		"timeline": "时间线", "audit": "操作审计", "actions": "操作", "close": "关闭订单", "reconcile": "立即对账",
		"replay": "重新投递", "replayall": "全部重新投递", "attempts": "次尝试", "who": "操作人", "what": "操作", "when": "时间",
		"k_created": "创建二维码", "k_paid": "买家已支付", "k_status": "状态变更", "k_delivery": "通知商户",
		"k_observation": "读取有赞交易", "k_attempt": "推送尝试", "k_superseded": "已被更新状态取代",
		"st_failed": "已放弃", "st_pending": "重试中", "st_delivered": "已送达", "st_superseded": "已被取代", "st_paused": "已暂停的端点",
		"paused_note": "端点健康（暂停的端点）尚未在本版本中提供。", "event": "事件", "endpoint": "端点", "result": "结果",
		"done": "已完成", "failed": "操作失败",
	},
	"en": {
		"title": "yzpay console", "login": "Log in", "password": "Admin key (ADMIN_API_KEY)", "name": "Your name (for the audit log)",
		"badlogin": "Wrong key: login refused.", "toomany": "Too many failed logins. Try again later.", "logout": "Log out",
		"unavailable": "The service is unavailable right now; reload in a moment.", "noorder": "No such order.",
		"orders": "Orders", "deliveries": "Deliveries", "search": "Search", "searchph": "order id / QR id / trade id",
		"status": "Status", "any": "Any", "from": "From", "to": "To", "filter": "Filter", "next": "Next page →",
		"order": "Order", "name_": "Product", "amount": "Amount", "created": "Created", "paid_at": "Paid", "tid": "Trade id",
		"qrid": "QR id", "payment": "Paid", "paytype": "Paid with", "buyer": "Buyer",
		"nomatch": "No order matches.", "none": "Nothing here.",
		"s_payments": "Payments today", "s_amount": "Amount today (¥)", "s_failing": "Deliveries failing", "s_lag": "Consumer lag",
		"s_yz": "Youzan errors (15 min)", "live": "live",
		"timeline": "Timeline", "audit": "Audit log", "actions": "Actions", "close": "Close order", "reconcile": "Reconcile now",
		"replay": "Replay", "replayall": "Replay all", "attempts": "attempts", "who": "Who", "what": "What", "when": "When",
		"k_created": "QR created", "k_paid": "Buyer paid", "k_status": "Status changed", "k_delivery": "Merchant notified",
		"k_observation": "Trade read from Youzan", "k_attempt": "Delivery attempt", "k_superseded": "Superseded by a newer status",
		"st_failed": "Given up", "st_pending": "Retrying", "st_delivered": "Delivered", "st_superseded": "Superseded", "st_paused": "Paused endpoints",
		"paused_note": "Endpoint health (paused endpoints) is not in this build yet.", "event": "Event", "endpoint": "Endpoint", "result": "Result",
		"done": "Done", "failed": "Failed",
	},
}
