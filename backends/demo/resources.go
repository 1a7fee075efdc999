package demo

import (
	"cmp"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// API versions.
const (
	v1 = "v1"
	v2 = "v2"
)

// money is the v2 representation of an amount: an exact decimal string.
type money struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
}

func newMoney(cents int64, currency string) money {
	return money{Amount: centsString(cents), Currency: currency}
}

// centsString renders non-negative cents as "1234.50".
func centsString(c int64) string {
	var b [24]byte
	out := b[:0]
	if c < 0 {
		out = append(out, '-')
		c = -c
	}
	out = strconv.AppendInt(out, c/100, 10)
	out = append(out, '.', byte('0'+c%100/10), byte('0'+c%10))
	return string(out)
}

// centsNumber renders cents as a v1 JSON number; c/100 is the nearest float64
// to the decimal, so the encoder prints exactly "1234.5".
func centsNumber(c int64) float64 { return float64(c) / 100 }

// ---- invoices ----

type invoiceV1 struct {
	ID         string  `json:"id"`
	Number     string  `json:"number"`
	CustomerID string  `json:"customer_id"`
	Amount     float64 `json:"amount"`
	Currency   string  `json:"currency"`
	Status     string  `json:"status"`
	IssuedAt   string  `json:"issued_at"`
}

type invoiceV2 struct {
	ID         string `json:"id"`
	Number     string `json:"number"`
	CustomerID string `json:"customer_id"`
	Total      money  `json:"total"`
	Status     string `json:"status"`
	IssueDate  string `json:"issue_date"`
}

func renderInvoice(v string, x *invoice) any {
	if v == v2 {
		return invoiceV2{ID: x.ID, Number: x.Number, CustomerID: x.CustomerID,
			Total: newMoney(x.AmountCents, x.Currency), Status: x.Status, IssueDate: x.IssuedAt}
	}
	return invoiceV1{ID: x.ID, Number: x.Number, CustomerID: x.CustomerID,
		Amount: centsNumber(x.AmountCents), Currency: x.Currency, Status: x.Status, IssuedAt: x.IssuedAt}
}

func invoiceSorts(v string) map[string]func(a, b *invoice) int {
	byAmount := func(a, b *invoice) int { return cmp.Compare(a.AmountCents, b.AmountCents) }
	byDate := func(a, b *invoice) int { return strings.Compare(a.IssuedAt, b.IssuedAt) }
	m := map[string]func(a, b *invoice) int{
		"id":          func(a, b *invoice) int { return strings.Compare(a.ID, b.ID) },
		"number":      func(a, b *invoice) int { return strings.Compare(a.Number, b.Number) },
		"customer_id": func(a, b *invoice) int { return strings.Compare(a.CustomerID, b.CustomerID) },
		"status":      func(a, b *invoice) int { return strings.Compare(a.Status, b.Status) },
	}
	if v == v2 {
		m["total"], m["issue_date"] = byAmount, byDate
	} else {
		m["amount"], m["issued_at"] = byAmount, byDate
	}
	return m
}

// invoiceFilter keeps invoices matching the status and customer_id query
// parameters exactly; a repeated parameter matches any of its values.
func invoiceFilter(q url.Values, x *invoice) bool {
	return anyOf(q, "status", x.Status) && anyOf(q, "customer_id", x.CustomerID)
}

// anyOf reports whether the query parameter name is absent or one of its
// values is v: how the demo reads repeated parameters (and how the REST
// dialect sends filter=field:in:…).
func anyOf(q url.Values, name, v string) bool {
	vals, ok := q[name]
	return !ok || slices.Contains(vals, v)
}

// buildInvoice reads an invoice body into a copy of cur (nil on create).
func buildInvoice(in *input, c *company, v string, cur *invoice, now time.Time) *invoice {
	x := &invoice{Status: "draft", IssuedAt: now.UTC().Format(dateLayout)}
	if cur != nil {
		*x = *cur
		if in.mode == modeReplace {
			x.Status, x.IssuedAt = "draft", now.UTC().Format(dateLayout)
		}
	}
	in.ignore("id", "number")
	if id, ok := in.text("customer_id", false); ok {
		if _, exists := c.customers[id]; exists {
			x.CustomerID = id
		} else { // another company's customer is as absent as a made-up one
			in.fail("customer_id", codeNotFound, "customer_id does not exist")
		}
	}
	if v == v2 {
		if cents, currency, ok := in.money("total", true); ok {
			x.AmountCents, x.Currency = cents, currency
		}
	} else {
		if cents, ok := in.numberCents("amount", true); ok {
			x.AmountCents = cents
		}
		if currency, ok := in.enum("currency", false, currencies); ok {
			x.Currency = currency
		}
	}
	if s, ok := in.enum("status", true, invoiceStatuses); ok {
		x.Status = s
	}
	dateField := "issued_at"
	if v == v2 {
		dateField = "issue_date"
	}
	if d, ok := in.date(dateField, true); ok {
		x.IssuedAt = d
	}
	return x
}

// ---- customers ----

type customerV1 struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Email     string `json:"email"`
	CreatedAt string `json:"created_at"`
}

type customerV2 struct {
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
	Email       string `json:"email"`
	Created     string `json:"created"`
}

func renderCustomer(v string, x *customer) any {
	created := x.CreatedAt.UTC().Format(time.RFC3339)
	if v == v2 {
		return customerV2{ID: x.ID, DisplayName: x.Name, Email: x.Email, Created: created}
	}
	return customerV1{ID: x.ID, Name: x.Name, Email: x.Email, CreatedAt: created}
}

func customerSorts(v string) map[string]func(a, b *customer) int {
	byName := func(a, b *customer) int { return strings.Compare(a.Name, b.Name) }
	byCreated := func(a, b *customer) int { return a.CreatedAt.Compare(b.CreatedAt) }
	m := map[string]func(a, b *customer) int{
		"id":    func(a, b *customer) int { return strings.Compare(a.ID, b.ID) },
		"email": func(a, b *customer) int { return strings.Compare(a.Email, b.Email) },
	}
	if v == v2 {
		m["display_name"], m["created"] = byName, byCreated
	} else {
		m["name"], m["created_at"] = byName, byCreated
	}
	return m
}

func buildCustomer(in *input, _ *company, v string, cur *customer, now time.Time) *customer {
	x := &customer{CreatedAt: now.UTC().Truncate(time.Second)}
	if cur != nil {
		*x = *cur
	}
	nameField := "name"
	if v == v2 {
		nameField = "display_name"
		in.ignore("id", "created")
	} else {
		in.ignore("id", "created_at")
	}
	if s, ok := in.name(nameField); ok {
		x.Name = s
	}
	if s, ok := in.email("email"); ok {
		x.Email = s
	}
	return x
}

// ---- products ----

type productV1 struct {
	ID       string  `json:"id"`
	SKU      string  `json:"sku"`
	Name     string  `json:"name"`
	Price    float64 `json:"price"`
	Currency string  `json:"currency"`
	Stock    int64   `json:"stock"`
}

type productV2 struct {
	ID        string `json:"id"`
	SKU       string `json:"sku"`
	Name      string `json:"name"`
	UnitPrice money  `json:"unit_price"`
	Stock     int64  `json:"stock"`
}

func renderProduct(v string, x *product) any {
	if v == v2 {
		return productV2{ID: x.ID, SKU: x.SKU, Name: x.Name, UnitPrice: newMoney(x.PriceCents, x.Currency), Stock: x.Stock}
	}
	return productV1{ID: x.ID, SKU: x.SKU, Name: x.Name, Price: centsNumber(x.PriceCents), Currency: x.Currency, Stock: x.Stock}
}

func productSorts(v string) map[string]func(a, b *product) int {
	byPrice := func(a, b *product) int { return cmp.Compare(a.PriceCents, b.PriceCents) }
	m := map[string]func(a, b *product) int{
		"id":    func(a, b *product) int { return strings.Compare(a.ID, b.ID) },
		"sku":   func(a, b *product) int { return strings.Compare(a.SKU, b.SKU) },
		"name":  func(a, b *product) int { return strings.Compare(a.Name, b.Name) },
		"stock": func(a, b *product) int { return cmp.Compare(a.Stock, b.Stock) },
	}
	if v == v2 {
		m["unit_price"] = byPrice
	} else {
		m["price"] = byPrice
	}
	return m
}

// productFilter keeps products matching the currency and sku query
// parameters exactly; a repeated parameter matches any of its values.
func productFilter(q url.Values, x *product) bool {
	return anyOf(q, "currency", x.Currency) && anyOf(q, "sku", x.SKU)
}

func buildProduct(in *input, c *company, v string, cur *product, _ time.Time) *product {
	x := &product{Currency: c.currency}
	if cur != nil {
		*x = *cur
		if in.mode == modeReplace {
			x.Currency, x.Stock = c.currency, 0
		}
	}
	in.ignore("id")
	if s, ok := in.name("sku"); ok {
		for id, p := range c.products {
			if p.SKU == s && (cur == nil || id != cur.ID) {
				in.fail("sku", codeNotUnique, "sku is already used by another product")
				ok = false
				break
			}
		}
		if ok {
			x.SKU = s
		}
	}
	if s, ok := in.name("name"); ok {
		x.Name = s
	}
	if v == v2 {
		if cents, currency, ok := in.money("unit_price", false); ok {
			x.PriceCents, x.Currency = cents, currency
		}
	} else {
		if cents, ok := in.numberCents("price", false); ok {
			x.PriceCents = cents
		}
		if currency, ok := in.enum("currency", true, currencies); ok {
			x.Currency = currency
		}
	}
	if n, ok := in.integer("stock", true, maxStock); ok {
		x.Stock = n
	}
	return x
}
