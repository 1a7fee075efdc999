package erpapp

import (
	"context"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/contract"
)

type redisMessage = redis.Message

// subscribeFleet subscribes to the fleet channel; go-redis re-subscribes
// after a lost connection (what was said meanwhile comes with the poll).
func subscribeFleet(ctx context.Context, l *Lasting, logger *zap.Logger) <-chan *redisMessage {
	sub := l.rdb.Subscribe(ctx, l.prefix+contract.RedisChannelFleet)
	go func() {
		<-ctx.Done()
		if err := sub.Close(); err != nil {
			logger.Debug("closing the fleet subscription", zap.Error(err))
		}
	}()
	return sub.Channel()
}
