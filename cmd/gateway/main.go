// Command gateway is erpgate: Caddy v2 with the erpgate modules compiled in.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/erpgate/erpgate/caddymodules/all"
)

func main() {
	caddycmd.Main()
}
