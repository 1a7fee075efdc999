package erpapp

import (
	"errors"
	"strings"

	"github.com/redis/go-redis/v9"
)

// redisOptions turns a `redis://` URL or a comma-separated list of addresses
// into options for a UniversalClient (one address: a single node; several: a cluster).
func redisOptions(addr string) (*redis.UniversalOptions, error) {
	if strings.Contains(addr, "://") {
		o, err := redis.ParseURL(addr)
		if err != nil {
			return nil, errors.New("erp: redis: invalid URL") // never echo it: it may hold a password
		}
		return &redis.UniversalOptions{
			Addrs:     []string{o.Addr},
			DB:        o.DB,
			Username:  o.Username,
			Password:  o.Password,
			TLSConfig: o.TLSConfig,
			Protocol:  o.Protocol,
		}, nil
	}
	var addrs []string
	for a := range strings.SplitSeq(addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return nil, errors.New("erp: redis: no address")
	}
	return &redis.UniversalOptions{Addrs: addrs}, nil
}
