package demo

import (
	"fmt"
	"strings"
	"time"
)

// Invoice statuses and accepted currencies.
var (
	invoiceStatuses = []string{"draft", "sent", "paid", "overdue"}
	currencies      = []string{"EUR", "USD", "GBP"}
)

// dateLayout is the layout of invoice dates (issued_at / issue_date).
const dateLayout = "2006-01-02"

// company holds one tenant's records. Ids embed the company slug, so a lookup
// in the wrong company's maps simply misses: isolation needs no extra check.
type company struct {
	id       string
	name     string
	currency string
	prefix   string // invoice number prefix, e.g. ACME

	invoices  map[string]*invoice
	customers map[string]*customer
	products  map[string]*product
	ledger    []*ledgerEntry // read-only, ordered by id; served over OData

	nextInvoice, nextCustomer, nextProduct int
}

// invoice amounts are kept in cents so that v1 numbers and v2 decimal strings
// are exact renderings of the same value.
type invoice struct {
	ID          string
	Number      string
	CustomerID  string
	AmountCents int64
	Currency    string
	Status      string
	IssuedAt    string // YYYY-MM-DD
}

type customer struct {
	ID        string
	Name      string
	Email     string
	CreatedAt time.Time
}

type product struct {
	ID         string
	SKU        string
	Name       string
	PriceCents int64
	Currency   string
	Stock      int64
}

func (c *company) invoiceID(n int) string  { return fmt.Sprintf("inv_%s_%04d", c.id, n) }
func (c *company) customerID(n int) string { return fmt.Sprintf("cus_%s_%03d", c.id, n) }
func (c *company) productID(n int) string  { return fmt.Sprintf("prd_%s_%03d", c.id, n) }
func (c *company) invoiceNumber(n int) string {
	return fmt.Sprintf("%s-%04d", c.prefix, n)
}

// ledgerEntry is a general-ledger line (the OData service's LedgerEntries).
type ledgerEntry struct {
	ID          string
	EntryNo     string
	Account     string // account code, text: "4000"
	Description string
	AmountCents int64 // negative for credits
	Currency    string
	PostedOn    string // YYYY-MM-DD
	Status      string // posted, draft
}

func (e *ledgerEntry) record() record {
	return record{"id": e.ID, "entry_no": e.EntryNo, "account": e.Account, "description": e.Description,
		"amount": float64(e.AmountCents) / 100, "currency": e.Currency, "posted_on": e.PostedOn, "status": e.Status}
}

// seedSpec sizes one company's seed data.
type seedSpec struct {
	id, name, currency            string
	invoices, customers, products int
	ledger                        int
}

var seedSpecs = []seedSpec{
	{id: "acme", name: "Acme Corp", currency: "EUR", invoices: 120, customers: 25, products: 30, ledger: 64},
	{id: "globex", name: "Globex", currency: "USD", invoices: 37, customers: 8, products: 12, ledger: 20},
}

var (
	ledgerAccounts = []string{"4000", "1200", "6100", "2100", "4000", "7000"}
	// ledgerTexts include a quote and an ampersand, so filters on them
	// exercise the escaping of every dialect.
	ledgerTexts = []string{"Sales revenue", "Customer payment", "Office rent", "Supplier invoice", "Refund to O'Brien & Sons", "Bank fees"}
)

var (
	nameFirst = []string{"Blue", "Northwind", "Silver", "Granite", "Harbor", "Cedar", "Summit", "Copper", "Maple", "Atlas", "Orion", "Pioneer", "Juniper"}
	nameLast  = []string{"Traders", "Logistics", "Foods", "Systems", "Works", "Partners", "Supplies", "Labs", "Holdings", "Retail", "Studios"}
	goods     = []string{"Widget", "Gadget", "Sprocket", "Bracket", "Flange", "Gear", "Valve", "Bearing", "Coupling", "Spring", "Hinge", "Rivet", "Gasket", "Pulley", "Lever"}
	grades    = []string{"Standard", "Pro", "Mini", "XL"}
	// seedStatuses cycles so that every status occurs and the first invoice is paid.
	seedStatuses = []string{"paid", "sent", "draft", "paid", "overdue", "sent", "paid"}
)

// seed builds a company deterministically from its spec.
func seed(s seedSpec) *company {
	c := &company{
		id:        s.id,
		name:      s.name,
		currency:  s.currency,
		prefix:    strings.ToUpper(s.id),
		invoices:  make(map[string]*invoice, s.invoices),
		customers: make(map[string]*customer, s.customers),
		products:  make(map[string]*product, s.products),
	}
	customerEpoch := time.Date(2025, 6, 2, 9, 0, 0, 0, time.UTC)
	for i := 1; i <= s.customers; i++ {
		first := nameFirst[(i-1)%len(nameFirst)]
		last := nameLast[(i-1)*3%len(nameLast)]
		slug := strings.ToLower(first + "-" + last)
		c.customers[c.customerID(i)] = &customer{
			ID:        c.customerID(i),
			Name:      fmt.Sprintf("%s %s %d", first, last, i),
			Email:     fmt.Sprintf("billing%d@%s.example", i, slug),
			CreatedAt: customerEpoch.Add(time.Duration(i-1) * 5 * 24 * time.Hour),
		}
	}
	for i := 1; i <= s.products; i++ {
		good := goods[(i-1)%len(goods)]
		grade := grades[(i-1)/len(goods)%len(grades)]
		c.products[c.productID(i)] = &product{
			ID:         c.productID(i),
			SKU:        fmt.Sprintf("%s-%s-%03d", c.prefix, strings.ToUpper(good[:3]), i),
			Name:       good + " " + grade,
			PriceCents: int64(499 + (i-1)*1250%20000),
			Currency:   c.currency,
			Stock:      int64((i - 1) * 17 % 250),
		}
	}
	invoiceEpoch := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	for i := 1; i <= s.invoices; i++ {
		cur := c.currency
		if i%10 == 0 { // a few foreign-currency invoices
			cur = currencies[(i/10)%len(currencies)]
		}
		c.invoices[c.invoiceID(i)] = &invoice{
			ID:          c.invoiceID(i),
			Number:      c.invoiceNumber(i),
			CustomerID:  c.customerID((i-1)*7%s.customers + 1),
			AmountCents: int64(123450 + (i-1)*104729%900000),
			Currency:    cur,
			Status:      seedStatuses[(i-1)%len(seedStatuses)],
			IssuedAt:    invoiceEpoch.AddDate(0, 0, 2*(i-1)).Format(dateLayout),
		}
	}
	ledgerEpoch := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	for i := 1; i <= s.ledger; i++ {
		k := (i - 1) % len(ledgerAccounts)
		amount := int64(5000 + (i-1)*7919%250000)
		if k == 1 || k == 4 { // payments received and refunds are credits
			amount = -amount
		}
		status := "posted"
		if i%9 == 0 {
			status = "draft"
		}
		c.ledger = append(c.ledger, &ledgerEntry{
			ID:          fmt.Sprintf("le_%s_%04d", c.id, i),
			EntryNo:     fmt.Sprintf("%s-GL-%04d", c.prefix, i),
			Account:     ledgerAccounts[k],
			Description: ledgerTexts[k],
			AmountCents: amount,
			Currency:    c.currency,
			PostedOn:    ledgerEpoch.AddDate(0, 0, 3*(i-1)).Format(dateLayout),
			Status:      status,
		})
	}
	c.nextInvoice, c.nextCustomer, c.nextProduct = s.invoices+1, s.customers+1, s.products+1
	return c
}
