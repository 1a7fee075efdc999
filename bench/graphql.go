package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// The GraphQL targets compare one GraphQL query with what a REST client
// does for the same data, in a process of their own (its backend, its
// plain reverse_proxy, its auth service, the full chain and /api/graphql):
//
//   - graphql: POST /api/graphql, 20 invoices with their customers; the
//     edge makes one list call and one batched customers call.
//   - rest-2calls: GET /api/v2/invoices?limit=20, then GET
//     /api/v2/customers?filter=id:in:<the page's distinct customer ids>,
//     the second built from the first answer: two requests in a row.
//
// One iteration is one result in the client's hands, so their req/s is
// iterations per second. Both are loaded with the built-in Go client (an
// iteration that is two requests, an answer checked for GraphQL errors),
// and so is their baseline.

const (
	gqlPlain = "plain (graphql process)"
	gqlName  = "graphql"
	restName = "rest-2calls"
)

// graphqlQuery is the graphql target's query: cost 1 + 20 (the list and,
// per invoice, its customer), charged to the company's rate limit.
const graphqlQuery = `{ invoices(first: 20) { nodes { number status total { amount currency } customer { display_name email } } } }`

// graphqlNames are the targets the GraphQL process serves; it starts only
// when one of them is selected.
var graphqlNames = []string{gqlPlain, gqlName, restName}

// graphqlTargets signs in at the GraphQL process and returns its targets,
// each checked once: the answers hold what the targets claim to fetch.
func graphqlTargets(ports map[string]int, dir, path string) ([]target, error) {
	logs := func() string {
		b, _ := os.ReadFile(filepath.Join(dir, "gateway-graphql.log"))
		return string(b)
	}
	if err := waitPort(ports["login-gql"]); err != nil {
		return nil, fmt.Errorf("gateway-graphql not ready: %w\n%s", err, logs())
	}
	token, err := login(ports["login-gql"])
	if err != nil {
		return nil, fmt.Errorf("gateway-graphql: %w\n%s", err, logs())
	}
	bearer := map[string]string{"Authorization": "Bearer " + token}
	body, _ := json.Marshal(map[string]string{"query": graphqlQuery})
	targets := []target{
		{name: gqlPlain, port: ports["plain-gql"], path: path, hdr: map[string]string{"X-ERP-Company-ID": "acme"}, base: gqlPlain, goOnly: true},
		{name: restName, port: ports["full-gql"], path: "/api/v2/invoices?limit=20", hdr: bearer, base: gqlPlain, goOnly: true, iterate: restTwoCalls},
		{name: gqlName, port: ports["full-gql"], path: "/api/graphql", hdr: bearer, base: gqlPlain, goOnly: true,
			method: http.MethodPost, body: string(body), iterate: graphqlCall},
	}
	if err := checkGraphQLPair(targets[1], targets[2]); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, logs())
	}
	return targets, nil
}

// graphqlCall is one graphql iteration: the POST, an answer of 200 without
// errors.
func graphqlCall(ctx context.Context, c *http.Client, tg target, buf *bytes.Buffer) error {
	status, err := do(ctx, c, tg.request(ctx, tg.url()), buf)
	if err != nil {
		return err
	}
	if status != http.StatusOK || bytes.Contains(buf.Bytes(), []byte(`"errors"`)) {
		return fmt.Errorf("graphql: status %d: %.300s", status, buf.Bytes())
	}
	return nil
}

// restTwoCalls is one rest-2calls iteration: the invoices page, then its
// customers by id, as a REST client stitches them.
func restTwoCalls(ctx context.Context, c *http.Client, tg target, buf *bytes.Buffer) error {
	_, err := restPair(ctx, c, tg, buf)
	return err
}

// restPair makes the two calls and returns the customers answer's items
// and the ids asked for.
func restPair(ctx context.Context, c *http.Client, tg target, buf *bytes.Buffer) (pair restAnswer, err error) {
	status, err := do(ctx, c, tg.request(ctx, tg.url()), buf)
	if err != nil {
		return pair, err
	}
	if status != http.StatusOK {
		return pair, fmt.Errorf("invoices: status %d: %.300s", status, buf.Bytes())
	}
	var invoices struct {
		Data []struct {
			CustomerID string `json:"customer_id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(buf.Bytes(), &invoices); err != nil {
		return pair, fmt.Errorf("invoices: %w", err)
	}
	seen := make(map[string]bool, len(invoices.Data))
	for _, inv := range invoices.Data {
		if inv.CustomerID != "" && !seen[inv.CustomerID] {
			seen[inv.CustomerID] = true
			pair.ids = append(pair.ids, inv.CustomerID)
		}
	}
	pair.invoices = len(invoices.Data)
	if len(pair.ids) == 0 {
		return pair, fmt.Errorf("invoices: no customer ids in %.300s", buf.Bytes())
	}
	q := url.Values{"filter": {"id:in:" + strings.Join(pair.ids, ",")}, "limit": {"200"}}
	u := fmt.Sprintf("http://127.0.0.1:%d/api/v2/customers?%s", tg.port, q.Encode())
	status, err = do(ctx, c, tg.request(ctx, u), buf)
	if err != nil {
		return pair, err
	}
	if status != http.StatusOK {
		return pair, fmt.Errorf("customers: status %d: %.300s", status, buf.Bytes())
	}
	pair.customers = buf.Bytes()
	return pair, nil
}

type restAnswer struct {
	invoices  int
	ids       []string
	customers []byte // the customers answer (valid until the buffer's next use)
}

// do sends req and reads the answer into buf.
func do(ctx context.Context, c *http.Client, req *http.Request, buf *bytes.Buffer) (int, error) {
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	buf.Reset()
	if _, err := io.Copy(buf, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// checkGraphQLPair runs each target once and checks that both fetch the
// same data: 20 invoices, each customer found (GraphQL: no null customer;
// REST: one customer per distinct id).
func checkGraphQLPair(rest, gql target) error {
	ctx := context.Background()
	c := &http.Client{}
	var buf bytes.Buffer
	pair, err := restPair(ctx, c, rest, &buf)
	if err != nil {
		return fmt.Errorf("%s: %w", restName, err)
	}
	var customers struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(pair.customers, &customers); err != nil {
		return fmt.Errorf("%s: customers: %w", restName, err)
	}
	if pair.invoices != 20 || len(customers.Data) != len(pair.ids) {
		return fmt.Errorf("%s: %d invoices, %d customer ids, %d customers found; want 20 invoices and every customer", restName, pair.invoices, len(pair.ids), len(customers.Data))
	}
	if err := graphqlCall(ctx, c, gql, &buf); err != nil {
		return err
	}
	var answer struct {
		Data struct {
			Invoices struct {
				Nodes []struct {
					Customer *struct {
						Email string `json:"email"`
					} `json:"customer"`
				} `json:"nodes"`
			} `json:"invoices"`
		} `json:"data"`
		Extensions struct {
			Meta map[string]any `json:"meta"`
		} `json:"extensions"`
	}
	if err := json.Unmarshal(buf.Bytes(), &answer); err != nil {
		return fmt.Errorf("graphql: %w", err)
	}
	nodes := answer.Data.Invoices.Nodes
	if len(nodes) != 20 {
		return fmt.Errorf("graphql: %d invoices; want 20: %.300s", len(nodes), buf.Bytes())
	}
	for i, n := range nodes {
		if n.Customer == nil || n.Customer.Email == "" {
			return fmt.Errorf("graphql: invoice %d without its customer: %.300s", i, buf.Bytes())
		}
	}
	fmt.Fprintf(os.Stderr, "graphql: 20 invoices with customers; meta cost %v, backend calls %v\n",
		answer.Extensions.Meta["cost"], answer.Extensions.Meta["calls"])
	return nil
}

// graphqlInvoicesSDL and graphqlCustomersSDL are the invoices and
// customers part of the demo's schema (Caddyfile.example), what the
// graphql target's query reads; each ends the heredoc it is put in.
const graphqlInvoicesSDL = `
				type Money {
					amount: String!
					currency: String!
				}
				type Invoice {
					id: ID!
					number: String
					customer_id: ID
					total: Money
					status: String
					issue_date: String
					customer: Customer @join(from: "customer_id", to: "id")
				}
				input InvoiceFilter {
					id: [ID!]
					status: [String!]
					customer_id: [ID!]
				}
				extend type Query {
					invoice(id: ID!): Invoice
					invoices(first: Int = 20, after: String, filter: InvoiceFilter, sort: String): InvoiceConnection
				}
				SDL`

const graphqlCustomersSDL = `
				type Customer {
					id: ID!
					display_name: String
					email: String
					created: String
				}
				input CustomerFilter {
					id: [ID!]
				}
				extend type Query {
					customer(id: ID!): Customer
					customers(first: Int = 20, after: String, filter: CustomerFilter, sort: String): CustomerConnection
				}
				SDL`

// caddyfileGraphQL is the GraphQL process: the invoices and customers
// backends with their schema, their backend, plain reverse_proxy, the auth
// service, and the full chain with /api/graphql (erp_graphql with its
// default plan limits; the quota, high enough never to refuse, is charged
// each query's cost).
func caddyfileGraphQL(p map[string]int) string {
	return fmt.Sprintf(`{
	admin 127.0.0.1:%[1]d
	log {
		level ERROR
	}
	erp {
		demo on
		backend invoices {
			dialect rest {
				filter_fields id status customer_id
			}
			graphql {
				sdl <<SDL%[6]s
			}
			version v2 http://127.0.0.1:%[2]d/v2
		}
		backend customers {
			dialect rest {
				filter_fields id
			}
			graphql {
				sdl <<SDL%[7]s
			}
			version v2 http://127.0.0.1:%[2]d/v2
		}
	}
}
http://127.0.0.1:%[2]d {
	erp_demo {
		insecure_skip_assertion
	}
}
http://:%[3]d {
	reverse_proxy 127.0.0.1:%[2]d
}
http://:%[4]d {
	erp_envelope
	erp_authsvc
	handle_errors {
		erp_envelope
	}
}
http://:%[5]d {
	erp_envelope
	handle /api/graphql {
		erp_auth {
			authenticated_only
		}
		erp_graphql
	}
	handle /api/* {
		erp_version
		erp_auth
		erp_quota {
			plan standard 1000000000/m
		}
		reverse_proxy {
			dynamic erp
		}
	}
	handle_errors {
		erp_envelope
	}
}
`, p["admin-gql"], p["demo-gql"], p["plain-gql"], p["login-gql"], p["full-gql"], graphqlInvoicesSDL, graphqlCustomersSDL)
}
