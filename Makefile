# erpgate — `make test` is the whole test suite, `make bench` the load benchmark.
GO        ?= go
BIN       := bin
GATEWAY   := $(BIN)/gateway
RACEBIN   := $(BIN)/gateway-race

export ERP_TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
export ERP_TEST_REDIS_URL    ?= redis://127.0.0.1:6379/0
export ERP_TEST_NATS_URL     ?= nats://127.0.0.1:4222
export ERP_TEST_SMTP_URL     ?= smtp://127.0.0.1:1025
export ERP_TEST_MAILPIT_URL  ?= http://127.0.0.1:8025

.PHONY: all build test services chromium promtool vet bench xcaddy image clean

all: build

build:
	$(GO) build -o $(GATEWAY) ./cmd/gateway

# nats-server built from the Go module go.mod pins: the test NATS when none
# runs, and the nodes of the cluster tests (ERP_TEST_NATS_SERVER)
$(BIN)/nats-server: go.mod go.sum
	$(GO) build -o $@ github.com/nats-io/nats-server/v2

# mailpit (pure Go, no cgo), the SMTP server the mail tests send to and
# read back through its HTTP API; a tool of its own, outside go.mod
MAILPIT_VERSION := v1.33.1
$(BIN)/mailpit:
	CGO_ENABLED=0 GOBIN=$(CURDIR)/$(BIN) $(GO) install github.com/axllent/mailpit@$(MAILPIT_VERSION)

services: $(BIN)/nats-server $(BIN)/mailpit
	./scripts/services.sh

# headless Chromium for the docs page and sign-in page tests (Debian's package)
chromium:
	./scripts/chromium.sh

# promtool for the alerting rules test (Debian's prometheus package)
promtool:
	./scripts/promtool.sh >/dev/null

vet:
	$(GO) vet ./...

# Whole-stack tests run the race-enabled binary built once here.
test: services chromium promtool vet
	$(GO) build -race -o $(RACEBIN) ./cmd/gateway
	ERP_TEST_BINARY=$(CURDIR)/$(RACEBIN) ERP_TEST_NATS_SERVER=$(CURDIR)/$(BIN)/nats-server $(GO) test -race -count=1 -timeout 12m ./...

bench: services build
	./scripts/wrk.sh
	$(GO) run ./bench -gateway $(GATEWAY)

xcaddy:
	./xcaddy.sh

# the container image (Dockerfile; needs a Docker engine, not run by make test)
IMAGE_TAG ?= 0.1.0
image:
	docker build -t erpgate/gateway:$(IMAGE_TAG) .

clean:
	rm -rf $(BIN)
