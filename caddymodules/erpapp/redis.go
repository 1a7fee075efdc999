package erpapp

import (
	"errors"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
)

// redisOptions turns the `redis` option into options for a UniversalClient:
//
//   - `redis://[user:password@]host:port/db` (or `rediss://`): one server;
//   - `redis://[user:password@]host:port?addr=host2:port2&addr=…`: a Redis
//     Cluster seeded by every address given, with the URL's credentials and
//     TLS (the form go-redis's ParseClusterURL reads);
//   - `host:port,host:port,…`: a Redis Cluster without credentials.
//
// A cluster client follows MOVED and ASK, and learns a failover from the
// cluster itself: the seeds need not be the current primaries.
func redisOptions(addr string) (*redis.UniversalOptions, error) {
	if strings.Contains(addr, "://") {
		if u, err := url.Parse(addr); err == nil && u.Query().Has("addr") {
			o, err := redis.ParseClusterURL(addr)
			if err != nil {
				return nil, errors.New("erp: redis: invalid cluster URL") // never echo it: it may hold a password
			}
			return &redis.UniversalOptions{
				Addrs:         o.Addrs,
				Username:      o.Username,
				Password:      o.Password,
				TLSConfig:     o.TLSConfig,
				Protocol:      o.Protocol,
				IsClusterMode: true,
			}, nil
		}
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
	return &redis.UniversalOptions{Addrs: addrs, IsClusterMode: len(addrs) > 1}, nil
}
