package gateway

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/yzpay/yzpay/shared/domain"
)

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
		"replay": "重新投递", "replayall": "全部重新投递", "attempts": "尝试次数", "attempt_pre": "第", "attempt_post": "次尝试", "who": "操作人", "what": "操作", "when": "时间",
		"k_created": "创建二维码", "k_paid": "买家已支付", "k_status": "状态变更", "k_delivery": "通知商户",
		"k_observation": "读取有赞交易", "k_attempt": "推送尝试", "k_superseded": "已被更新状态取代",
		"st_failed": "已放弃", "st_pending": "待投递", "st_delivered": "已送达", "st_superseded": "已被取代", "st_paused": "已暂停的端点",
		"event": "事件", "endpoint": "端点", "result": "结果",
		"done": "已完成", "failed": "操作失败", "failed_code": "操作失败（{0}）。",
		"state": "状态", "since": "开始于", "failing_since": "首次失败", "last_error": "最近错误", "pending": "待投递",
		"next_probe": "下次探测", "resume": "恢复", "ep_active": "正常", "ep_paused": "已暂停", "noendpoints": "所有端点都正常，没有失败记录。",
		"resumes": "最近的恢复操作",
		"a_login": "登录", "a_logout": "退出", "a_replay": "重新投递", "a_replay_all": "全部重新投递", "a_close": "关闭订单",
		"a_reconcile": "立即对账", "a_resume": "恢复端点",
		"m_closed": "订单已关闭", "m_refused": "已拒绝：{0}", "m_reopened": "已重新开启 {0} 条投递",
		"m_handed": "已将 {0} 笔交易交给交易读取服务", "m_replayed_all": "已重新投递 {0} 条，{1} 条被拒绝", "m_from": "来自 {0}",
		"m_youzan": "有赞：{0}", "m_resumed": "端点已恢复，待投递的通知将重新发送：{0}", "m_not_paused": "端点未暂停，无需恢复：{0}",
		"m_logged_out": "已退出",
		"d_read":       "已从有赞读取交易 {0}", "d_read_from": "已从有赞读取交易 {0}，原状态 {1}", "d_expired": "超时未支付",
		"d_expired_from": "超时未支付，原状态 {0}",
		"e_csrf_failed":  "页面已过期（CSRF 校验失败），请刷新后重试。", "e_unauthorized": "请先登录。",
		"e_already_paid": "订单已支付，不能关闭。", "e_order_conflict": "订单当前状态不能关闭。", "e_order_not_found": "找不到该订单。",
		"e_delivery_not_found": "没有找到该投递记录。", "e_delivery_superseded": "该端点已收到此订单更新的状态，被取代的投递不会重新投递。",
		"e_replay_unavailable": "本进程未启用重新投递。", "e_broker_unavailable": "消息队列暂时不可用，请重试。",
		"e_endpoint_not_found": "没有该端点的健康记录。", "e_youzan_unavailable": "有赞暂时无响应或正在限流，请重试。",
		"e_youzan_error": "有赞拒绝了请求。", "e_timeout": "请求超时，请重试。", "e_unavailable": "服务暂时不可用，请稍后重试。",
		"os_WAIT_BUYER_PAY": "待支付", "os_TRADE_PAID": "已支付", "os_PAID": "已支付", "os_WAIT_CONFIRM": "待确认",
		"os_WAIT_SELLER_SEND_GOODS": "待发货", "os_WAIT_BUYER_CONFIRM_GOODS": "待收货", "os_TRADE_BUYER_SIGNED": "买家已签收",
		"os_TRADE_SUCCESS": "交易成功", "os_TRADE_CLOSED": "已关闭",
	},
	"en": {
		"title": "yzpay console", "login": "Log in", "password": "Admin key (ADMIN_API_KEY)", "name": "Your name (for the audit log)",
		"badlogin": "Wrong key: login refused.", "toomany": "Too many failed logins. Try again later.", "logout": "Log out",
		"unavailable": "The service is unavailable right now; reload in a moment.", "noorder": "No such order.",
		"orders": "Orders", "deliveries": "Deliveries", "search": "Search", "searchph": "order id / QR id / trade id",
		"status": "Status", "any": "Any", "from": "From", "to": "To", "filter": "Filter", "next": "Next page →",
		"order": "Order", "name_": "Product", "amount": "Amount", "created": "Created", "paid_at": "Paid at", "tid": "Trade id",
		"qrid": "QR id", "payment": "Amount paid", "paytype": "Paid with", "buyer": "Buyer",
		"nomatch": "No order matches.", "none": "Nothing here.",
		"s_payments": "Payments today", "s_amount": "Amount today (¥)", "s_failing": "Deliveries failing", "s_lag": "Consumer lag",
		"s_yz": "Youzan errors (15 min)", "live": "live",
		"timeline": "Timeline", "audit": "Audit log", "actions": "Actions", "close": "Close order", "reconcile": "Reconcile now",
		"replay": "Replay", "replayall": "Replay all", "attempts": "Attempts", "attempt_pre": "attempt", "attempt_post": "", "who": "Who", "what": "What", "when": "When",
		"k_created": "QR created", "k_paid": "Buyer paid", "k_status": "Status changed", "k_delivery": "Merchant notification",
		"k_observation": "Trade read from Youzan", "k_attempt": "Delivery attempt", "k_superseded": "Superseded by a newer status",
		"st_failed": "Given up", "st_pending": "Pending", "st_delivered": "Delivered", "st_superseded": "Superseded", "st_paused": "Paused endpoints",
		"event": "Event", "endpoint": "Endpoint", "result": "Result",
		"done": "Done", "failed": "Failed", "failed_code": "Failed ({0}).",
		"state": "State", "since": "Since", "failing_since": "Failing since", "last_error": "Last error", "pending": "Pending",
		"next_probe": "Next probe", "resume": "Resume", "ep_active": "Active", "ep_paused": "Paused", "noendpoints": "No endpoint has failed.",
		"resumes": "Recent resumes",
		"a_login": "login", "a_logout": "logout", "a_replay": "replay", "a_replay_all": "replay all", "a_close": "close",
		"a_reconcile": "reconcile", "a_resume": "resume endpoint",
		"m_closed": "closed", "m_refused": "refused: {0}", "m_reopened": "{0} delivery(ies) reopened",
		"m_handed": "{0} trade(s) handed to the tradefetcher", "m_replayed_all": "{0} replayed, {1} refused", "m_from": "from {0}",
		"m_youzan": "youzan: {0}", "m_resumed": "endpoint resumed; its held deliveries go out again: {0}", "m_not_paused": "endpoint was not paused: {0}",
		"m_logged_out": "logged out",
		// The store's timeline details (shared/store/timeline.go), matched back.
		"d_read": "trade {0} read from Youzan", "d_read_from": "trade {0} read from Youzan, from {1}", "d_expired": "expired unpaid",
		"d_expired_from":    "expired unpaid, from {0}",
		"os_WAIT_BUYER_PAY": "Awaiting payment", "os_TRADE_PAID": "Paid", "os_PAID": "Paid", "os_WAIT_CONFIRM": "Awaiting confirmation",
		"os_WAIT_SELLER_SEND_GOODS": "Awaiting shipment", "os_WAIT_BUYER_CONFIRM_GOODS": "Awaiting receipt", "os_TRADE_BUYER_SIGNED": "Signed for",
		"os_TRADE_SUCCESS": "Completed", "os_TRADE_CLOSED": "Closed",
	},
}

// textMsg is a console message: a key of consoleTexts (m_...) with
// its arguments, filled into the {0}, {1}, ... of the text.
type textMsg struct {
	key  string
	args []string
}

func msg(key string, args ...any) textMsg {
	m := textMsg{key: key}
	for _, a := range args {
		m.args = append(m.args, fmt.Sprint(a))
	}
	return m
}

// in renders m in language l (zh or en).
func (m textMsg) in(l string) string {
	t, ok := consoleTexts[l][m.key]
	if !ok {
		t = consoleTexts["en"][m.key]
	}
	for i, a := range m.args {
		t = strings.ReplaceAll(t, "{"+strconv.Itoa(i)+"}", a)
	}
	return t
}

// auditKeys are the messages an audit entry's detail is written with (in
// English, the log's language); auditDetail shows a stored detail in the
// page's language by matching it against them.
var auditKeys = []string{"m_closed", "m_refused", "m_reopened", "m_handed", "m_replayed_all", "m_from", "m_youzan",
	"m_resumed", "m_not_paused", "d_read_from", "d_read", "d_expired_from", "d_expired"}

var auditPatterns = func() map[string]*regexp.Regexp {
	out := map[string]*regexp.Regexp{}
	arg := regexp.MustCompile(`\\\{\d+\\\}`) // {n} after QuoteMeta
	for _, k := range auditKeys {
		out[k] = regexp.MustCompile("^" + arg.ReplaceAllString(regexp.QuoteMeta(consoleTexts["en"][k]), "(.*)") + "$")
	}
	return out
}()

func auditDetail(l, detail string) string {
	if l == "en" {
		return detail
	}
	for _, k := range auditKeys {
		if m := auditPatterns[k].FindStringSubmatch(detail); m != nil {
			args := make([]any, 0, len(m)-1)
			for _, a := range m[1:] {
				args = append(args, a)
			}
			return msg(k, args...).in(l)
		}
	}
	return detail
}

// errText is an action's error as the operator reads it: the API's own
// message in English, else the code's text in the page's language.
func errText(l string, e *domain.Error) string {
	if l == "en" {
		return e.Message
	}
	if t, ok := consoleTexts[l]["e_"+string(e.Code)]; ok {
		return t
	}
	return msg("failed_code", e.Code).in(l)
}

// text looks key up in language l, falling back to the key's English text
// and then to fallback (an order status or state without a translation).
func text(l, key, fallback string) string {
	if t, ok := consoleTexts[l][key]; ok {
		return t
	}
	if t, ok := consoleTexts["en"][key]; ok {
		return t
	}
	return fallback
}
