package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/julienschmidt/httprouter"
	"github.com/yzpay/yzpay/shared/domain"
	"github.com/yzpay/yzpay/shared/httpapi"
	"github.com/yzpay/yzpay/shared/qrimage"
	"github.com/yzpay/yzpay/shared/replay"
	"github.com/yzpay/yzpay/shared/youzan"
)

const (
	maxOrderBody = 64 << 10
	maxPrice     = 10_000_000
	maxNameLen   = 100
)

var (
	orderIDPattern    = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)
	errInvalidOrderID = domain.Errorf(domain.CodeInvalidOrderID, "order_id must be 1 to 64 characters of A-Z a-z 0-9 _ . : -")
)

// orderRequest keeps price raw so 1.5 and "100" are refused rather than
// coerced, as the original service's Math.abs(price) once did.
type orderRequest struct {
	Name      *string          `json:"name"`
	Price     *json.RawMessage `json:"price"`
	OrderID   *string          `json:"order_id"`
	ReturnURL *string          `json:"return_url"`
	NotifyURL *string          `json:"notify_url"`
}

// createRequest is a parsed, checked create request.
type createRequest struct {
	order     domain.NewOrder
	returnURL string // "" = none; checked against RETURN_URL_HOSTS by the handler
	notifyURL string // "" = none; checked against NOTIFY_URL_HOSTS by the handler
}

func parseOrderRequest(w http.ResponseWriter, r *http.Request) (createRequest, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxOrderBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return createRequest{}, domain.Errorf(domain.CodeBodyTooLarge, "request body exceeds 64 KiB")
		}
		return createRequest{}, domain.Errorf(domain.CodeBadBody, "could not read request body")
	}
	var (
		req      orderRequest
		priceErr = "price must be a JSON integer number of fen from 1 to 10000000"
		price    func() (int64, error)
	)
	// The original service's body parser took forms too, and merchants'
	// PHP often posts one; anything else is read as JSON, as before.
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return createRequest{}, domain.Errorf(domain.CodeBadBody, "request body is not a valid urlencoded form")
		}
		field := func(k string) *string {
			if vs, ok := form[k]; ok && len(vs) > 0 {
				return &vs[0]
			}
			return nil
		}
		req.Name, req.OrderID, req.ReturnURL, req.NotifyURL = field("name"), field("order_id"), field("return_url"), field("notify_url")
		priceErr = "price must be a decimal integer number of fen from 1 to 10000000"
		if p := field("price"); p != nil {
			price = func() (int64, error) { return parseFormPrice(*p) }
		}
	} else {
		dec := json.NewDecoder(bytes.NewReader(body))
		if err := dec.Decode(&req); err != nil {
			return createRequest{}, domain.Errorf(domain.CodeMalformedJSON, "request body must be a JSON object")
		}
		if dec.More() {
			return createRequest{}, domain.Errorf(domain.CodeMalformedJSON, "request body must be a single JSON object")
		}
		if req.Price != nil {
			price = func() (int64, error) { return parsePrice(*req.Price) }
		}
	}
	if req.Name == nil {
		return createRequest{}, domain.Errorf(domain.CodeInvalidName, "name is required")
	}
	name := strings.TrimSpace(*req.Name)
	if n := utf8.RuneCountInString(name); n < 1 || n > maxNameLen {
		return createRequest{}, domain.Errorf(domain.CodeInvalidName, "name must be 1 to 100 characters after trimming")
	}
	// A NUL is refused by Postgres as a store error (which would tell the
	// merchant to retry forever), and control characters break the
	// checkout page, logs and Youzan's QR title alike.
	if !utf8.ValidString(name) || strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return createRequest{}, domain.Errorf(domain.CodeInvalidName, "name must be valid UTF-8 without control characters")
	}
	if price == nil {
		return createRequest{}, domain.Errorf(domain.CodeInvalidPrice, "price is required (integer fen)")
	}
	p, err := price()
	if err != nil {
		return createRequest{}, domain.Errorf(domain.CodeInvalidPrice, "%s", priceErr)
	}
	if req.OrderID == nil || !orderIDPattern.MatchString(*req.OrderID) {
		return createRequest{}, errInvalidOrderID
	}
	c := createRequest{order: domain.NewOrder{OrderID: *req.OrderID, Name: name, Price: p}}
	if req.ReturnURL != nil {
		c.returnURL = strings.TrimSpace(*req.ReturnURL)
	}
	if req.NotifyURL != nil {
		c.notifyURL = strings.TrimSpace(*req.NotifyURL)
	}
	return c, nil
}

// parseFormPrice reads a form's price: plain decimal digits only, so that
// "1.5", "1e3", "+5" and " 100" are refused as JSON refuses them.
func parseFormPrice(s string) (int64, error) {
	if s == "" || len(s) > 9 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, errors.New("not a decimal integer")
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 1 || v > maxPrice {
		return 0, errors.New("out of range")
	}
	return v, nil
}

func parsePrice(raw json.RawMessage) (int64, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || strings.ContainsAny(s, ".eE\"") {
		return 0, errors.New("not an integer")
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, err
	}
	v, err := n.Int64()
	if err != nil || v < 1 || v > maxPrice {
		return 0, errors.New("out of range")
	}
	return v, nil
}

type qrResponse struct {
	QRID    int64  `json:"qr_id"`
	QRURL   string `json:"qr_url"`
	QRCode  string `json:"qr_code"`
	OrderID string `json:"order_id"`
	Price   int64  `json:"price"`
	Status  string `json:"status"`
	// CheckoutURL is the hosted page for the buyer (absolute with
	// PUBLIC_URL, else a path on the gateway).
	CheckoutURL string `json:"checkout_url"`
}

func (g *Gateway) createQRCode(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	cr, err := parseOrderRequest(w, r)
	if err == nil {
		err = g.checkCreateURLs(cr)
	}
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	req := cr.order
	page := domain.Checkout{Token: newCheckoutToken(), OrderID: req.OrderID, ReturnURL: cr.returnURL, NotifyURL: cr.notifyURL}
	c, err := g.ensureQR(r.Context(), req, page)
	if err != nil {
		g.writeErr(w, r, err, "order_id", req.OrderID)
		return
	}
	o, img := c.order, c.img
	if img == "" {
		if img, err = qrimage.PNGDataURI(o.QRURL); err != nil {
			g.log.Error("render QR image", "order_id", o.OrderID, "qr_id", o.QRID, "err", err)
			g.writeErr(w, r, domain.Wrap(err, domain.CodeQRRenderFailed, "could not render the QR image"))
			return
		}
	}
	var co domain.Checkout
	if c.page != nil {
		err = checkPage(*c.page, page)
		co = *c.page
	} else {
		co, err = g.bindCheckout(r.Context(), page)
	}
	if err != nil {
		g.writeErr(w, r, err, "order_id", req.OrderID)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, qrResponse{
		QRID: o.QRID, QRURL: o.QRURL, QRCode: img, OrderID: o.OrderID, Price: o.Price, Status: o.Status,
		CheckoutURL: g.cfg.PublicURL + "/pay/" + co.Token,
	})
}

// created is what ensureQR found or made.
type created struct {
	order domain.Order
	// page is the order's checkout page when it was bound with the QR in
	// one store call; nil when the handler still has to bind it.
	page *domain.Checkout
	// img is order.QRURL rendered when ensureQR already did; "" otherwise.
	img string
}

// ensureQR runs reserve → create at Youzan → attach. Only the replica holding
// the claim calls Youzan, so concurrent requests for one order_id make one QR;
// the others wait for it. If the holder crashes, its claim lapses and the next
// request completes the order.
//
// The holder binds page with the QR in one store call (one commit instead of
// two). It renders the image first: a QR that cannot be drawn is attached
// alone, as before, so the store holds the same rows whatever happens.
func (g *Gateway) ensureQR(ctx context.Context, req domain.NewOrder, page domain.Checkout) (created, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	wait := 20 * time.Millisecond
	for {
		res, err := g.deps.Store.Reserve(ctx, req, g.cfg.ClaimFor)
		if err != nil {
			return created{}, err
		}
		if res.Order.QRID != 0 {
			return created{order: res.Order}, nil
		}
		if res.Claimed {
			// On failure, let the merchant's retry claim at once. A QR Youzan
			// made that we could not record was shown to nobody: no one can
			// pay it. (A claim whose QR is attached is not released.)
			release := func() {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
				defer cancel()
				if rerr := g.deps.Store.ReleaseClaim(rctx, req.OrderID, res.ClaimToken); rerr != nil {
					g.log.Warn("could not release QR claim; it lapses by itself", "order_id", req.OrderID, "err", rerr)
				}
			}
			qr, err := g.deps.Youzan.CreateQRCode(ctx, req.Name, req.Price)
			if err != nil {
				release()
				return created{}, err
			}
			var c created
			img, rerr := qrimage.PNGDataURI(qr.URL)
			if rerr != nil {
				c.order, err = g.deps.Store.AttachQR(ctx, req.OrderID, domain.QRCode{ID: qr.ID, URL: qr.URL})
			} else {
				var co domain.Checkout
				c.order, co, err = g.deps.Store.AttachQRAndCheckout(ctx, domain.QRCode{ID: qr.ID, URL: qr.URL}, page)
				c.page = &co
				if c.order.QRURL == qr.URL {
					c.img = img
				} // else another QR won (a lapsed claim): the handler draws that one
			}
			if err != nil {
				release()
				return created{}, fmt.Errorf("attach qr %d: %w", qr.ID, err)
			}
			g.log.Info("order created", "order_id", c.order.OrderID, "qr_id", c.order.QRID, "price", c.order.Price)
			return c, nil
		}
		// Another request holds the claim: poll until it attaches the QR.
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return created{}, ctx.Err()
		case <-t.C:
		}
		wait = min(wait*2, 500*time.Millisecond)
	}
}

// writeErr answers err through httpapi's one code → status table.
func (g *Gateway) writeErr(w http.ResponseWriter, r *http.Request, err error, attrs ...any) {
	httpapi.Error(w, r, g.m, g.log, g.apiError(r, err, attrs...))
}

// apiError gives err its API code. Errors that are not yet domain errors
// come from the gateway's adapters (Youzan, the store, the replayer,
// deadlines), which the domain knows nothing of, so they get their code
// here (and are logged); any other failure of a backend call is retryable
// for the client.
func (g *Gateway) apiError(r *http.Request, err error, attrs ...any) error {
	var ye *youzan.Error
	if _, ok := domain.AsError(err); !ok {
		switch {
		case errors.Is(err, replay.ErrNothingToReplay):
			err = domain.Wrap(err, domain.CodeDeliveryNotFound, "no delivery recorded for that event (and endpoint)")
		case errors.Is(err, replay.ErrSuperseded):
			err = domain.Wrap(err, domain.CodeDeliverySuperseded, "the endpoint already has a newer status of this order; a superseded delivery is not replayed")
		case errors.As(err, &ye):
			g.log.Warn("youzan call failed", append(attrs, "err", err, "request_id", httpapi.RequestID(r.Context()))...)
			if ye.Retryable() {
				err = domain.Wrap(err, domain.CodeYouzanUnavailable, "Youzan did not answer in time or is rate limiting; retry the same request")
			} else {
				// Youzan's own words tell the merchant what to fix, and
				// youzan.Error keeps tokens and secrets out of them.
				err = domain.Wrap(err, domain.CodeYouzanError, "Youzan refused the request: "+ye.Message)
			}
		case errors.Is(err, context.DeadlineExceeded):
			err = domain.Wrap(err, domain.CodeTimeout, "timed out; retry the same request")
		default:
			g.log.Error("request failed", append(attrs, "err", err, "request_id", httpapi.RequestID(r.Context()))...)
			err = domain.Wrap(err, domain.CodeUnavailable, "a backend is unavailable; retry the same request")
		}
	}
	return err
}

type orderResponse struct {
	OrderID   string `json:"order_id"`
	Name      string `json:"name"`
	Price     int64  `json:"price"`
	Status    string `json:"status"`
	QRID      int64  `json:"qr_id"`
	QRURL     string `json:"qr_url"`
	TID       string `json:"tid"`
	Payment   int64  `json:"payment"`
	UUID      string `json:"uuid"`
	PayType   string `json:"pay_type"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
	PaidAt    string `json:"paid_at"`
	// AmountMismatch: the buyer paid another amount than the price; the
	// merchant should not ship before looking (README, GET order).
	AmountMismatch bool `json:"amount_mismatch"`
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func toOrderResponse(o domain.Order) orderResponse {
	return orderResponse{
		OrderID: o.OrderID, Name: o.Name, Price: o.Price, Status: o.Status, QRID: o.QRID, QRURL: o.QRURL,
		TID: o.TID, Payment: o.Payment, UUID: o.BuyerID, PayType: o.PayType,
		CreatedAt: rfc3339(o.CreatedAt), UpdatedAt: rfc3339(o.UpdatedAt), PaidAt: rfc3339(o.PaidAt),
		AmountMismatch: o.AmountMismatch(),
	}
}

func (g *Gateway) getOrder(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	id := ps.ByName("order_id")
	if !orderIDPattern.MatchString(id) {
		g.writeErr(w, r, errInvalidOrderID)
		return
	}
	o, err := g.deps.Store.OrderByID(r.Context(), id)
	if err != nil {
		g.writeErr(w, r, err, "order_id", id)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, toOrderResponse(o))
}
