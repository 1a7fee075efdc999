// Package rediscluster holds what erpgate needs beyond go-redis to run on
// a Redis Cluster as well as on one server:
//
//   - Keys lists the keys matching a pattern. SCAN walks one server's
//     keyspace: sent through a ClusterClient it reaches one node, which
//     holds only its own slots, so a resync of "every revocation mark"
//     done that way silently misses most of them. Keys scans every
//     primary.
//
//   - FollowFailovers makes a ClusterClient learn a failover as soon as
//     its commands fail. go-redis re-reads the cluster's layout on a MOVED
//     reply or every 10 s; a crashed primary answers nothing, so without
//     this every command for its slots keeps dialing the dead address —
//     and, bounded by our 100 ms timeouts, never gets as far as trying
//     another node — for up to 10 s after the replica has taken over.
//     Relearn does the same for a subscription that was lost.
//
//   - Options and Open read the one address form every erpgate `redis`
//     setting takes (one server or a cluster), for the gateway and the
//     standalone auth service alike.
//
// Keys and FollowFailovers are no-ops on a single-server client. Of ours
// it imports nothing, and no Caddy.
package rediscluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Keys returns every key matching match (a SCAN pattern), count a hint per
// SCAN call. On a cluster it scans every primary (concurrently) and fails
// when any of them does not answer: the caller retries rather than act on
// part of the keyspace. A key may appear twice (SCAN's guarantee).
func Keys(ctx context.Context, c redis.UniversalClient, match string, count int64) ([]string, error) {
	if cc, ok := c.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		var all []string
		err := cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			keys, err := scan(ctx, node, match, count)
			if err != nil {
				return fmt.Errorf("%s: %w", node.Options().Addr, err)
			}
			mu.Lock()
			all = append(all, keys...)
			mu.Unlock()
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("scan cluster: %w", err)
		}
		return all, nil
	}
	return scan(ctx, c, match, count)
}

func scan(ctx context.Context, c redis.Cmdable, match string, count int64) ([]string, error) {
	var keys []string
	iter := c.Scan(ctx, 0, match, count).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	return keys, iter.Err()
}

// FollowFailovers makes a cluster client re-read the cluster's layout
// whenever a command or pipeline fails with anything but an ordinary
// reply: a connection refused or reset, a timeout, CLUSTERDOWN, TRYAGAIN,
// MASTERDOWN, READONLY, LOADING. go-redis coalesces the reloads (one at a
// time, at most one every 200 ms), so a burst of failures costs one
// CLUSTER SLOTS. Call it once, before the client is shared.
func FollowFailovers(c redis.UniversalClient) {
	if cc, ok := c.(*redis.ClusterClient); ok {
		cc.AddHook(reloadHook{cc})
	}
}

// Relearn makes a cluster client re-read the cluster's layout (in the
// background): for a subscription that was lost, as pub/sub connections
// are not commands and FollowFailovers does not see them fail.
func Relearn(c redis.UniversalClient) {
	if cc, ok := c.(*redis.ClusterClient); ok {
		cc.ReloadState(context.Background())
	}
}

type reloadHook struct{ c *redis.ClusterClient }

func (h reloadHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h reloadHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if layoutMayHaveChanged(err) {
			h.c.ReloadState(ctx)
		}
		return err
	}
}

func (h reloadHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			if layoutMayHaveChanged(cmd.Err()) {
				h.c.ReloadState(ctx)
				break
			}
		}
		if layoutMayHaveChanged(err) {
			h.c.ReloadState(ctx)
		}
		return err
	}
}

// layoutMayHaveChanged: err is not an answer about the data (nil, a
// missing key, a script's or command's own error) but a node that did not
// answer or said the cluster is moving.
func layoutMayHaveChanged(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) || errors.Is(err, context.Canceled) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var re redis.Error
	if errors.As(err, &re) {
		msg := re.Error()
		for _, p := range []string{"CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "READONLY", "LOADING", "MOVED", "ASK"} {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
		return false
	}
	return true // an error go-redis made itself (a closed pool, a dial): not a reply
}

// Options turns a `redis` setting into options for a UniversalClient:
//
//   - `redis://[user:password@]host:port/db` (or `rediss://`): one server;
//   - `redis://[user:password@]host:port?addr=host2:port2&addr=…`: a Redis
//     Cluster seeded by every address given, with the URL's credentials and
//     TLS (the form go-redis's ParseClusterURL reads);
//   - `host:port,host:port,…`: a Redis Cluster without credentials (one
//     address alone: one server).
//
// A cluster client follows MOVED and ASK, and learns a failover from the
// cluster itself: the seeds need not be the current primaries. An error
// never holds the setting: it may hold a password.
func Options(addr string) (*redis.UniversalOptions, error) {
	if strings.Contains(addr, "://") {
		if u, err := url.Parse(addr); err == nil && u.Query().Has("addr") {
			o, err := redis.ParseClusterURL(addr)
			if err != nil {
				return nil, errors.New("redis: invalid cluster URL")
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
			return nil, errors.New("redis: invalid URL")
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
		return nil, errors.New("redis: no address")
	}
	return &redis.UniversalOptions{Addrs: addrs, IsClusterMode: len(addrs) > 1}, nil
}

// Open is a client for a `redis` setting (Options) that, on a cluster,
// follows failovers (FollowFailovers). It connects lazily.
func Open(addr string) (redis.UniversalClient, error) {
	o, err := Options(addr)
	if err != nil {
		return nil, err
	}
	c := redis.NewUniversalClient(o)
	FollowFailovers(c)
	return c, nil
}
