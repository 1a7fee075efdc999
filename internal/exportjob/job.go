// Package exportjob is the Caddy-free core of erp_export_jobs: an export
// job's record, the stores that keep it (memory, or Redis shared by every
// instance), the signed download links and the output files' names.
//
// A job's record holds no credential: the job runs where it was created,
// with the caller's credential held in that process's memory only. Each
// company has at most a configured number of active (queued or running)
// jobs; in Redis, an active job holds a lease that the instance running it
// renews, so the slot of a job whose instance died frees itself.
package exportjob

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Status is a job's state.
type Status string

// The states of a job.
const (
	Queued  Status = "queued"
	Running Status = "running"
	Done    Status = "done"
	Failed  Status = "failed"
)

// Active reports whether s is queued or running.
func (s Status) Active() bool { return s == Queued || s == Running }

// Job is an export job's record.
type Job struct {
	ID       string    `json:"id"`
	Company  string    `json:"company"`
	User     string    `json:"user"`
	Backend  string    `json:"backend"`
	Version  string    `json:"version,omitempty"`
	Format   string    `json:"format"`
	Filter   string    `json:"filter,omitempty"`
	Sort     string    `json:"sort,omitempty"`
	Status   Status    `json:"status"`
	Rows     int64     `json:"rows"`
	Bytes    int64     `json:"bytes"`
	ErrCode  string    `json:"error_code,omitempty"`
	ErrMsg   string    `json:"error_message,omitempty"`
	Created  time.Time `json:"created"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	// Expires is when the record and its file go: Finished + the
	// retention for a finished job.
	Expires time.Time `json:"expires,omitzero"`
	// Instance names the process that runs (ran) the job.
	Instance string `json:"instance"`
}

// FileName is the job's output file's name in the export directory.
func (j *Job) FileName() string { return j.ID + "." + j.Format }

// Errors of the stores.
var (
	ErrNotFound = errors.New("exportjob: no such job")
	ErrTooMany  = errors.New("exportjob: the company has as many active jobs as allowed")
)

// Store keeps job records.
type Store interface {
	// Create stores the new job j unless its company already has
	// maxActive active jobs (ErrTooMany). An active job's slot is held
	// until lease from now unless Update renews it.
	Create(ctx context.Context, j *Job, maxActive int, lease, ttl time.Duration) error
	// Get returns the job id of company, ErrNotFound when there is none
	// (another company's job is none).
	Get(ctx context.Context, company, id string) (*Job, error)
	// Update writes j's state (renewing its lease while active, releasing
	// its slot once finished), the record kept for ttl; ErrNotFound when
	// the job was deleted meanwhile.
	Update(ctx context.Context, j *Job, lease, ttl time.Duration) error
	// Delete removes the job id of company and returns it.
	Delete(ctx context.Context, company, id string) (*Job, error)
}

// NewID is a new job id: "exp_" and 26 characters of 128 random bits.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "exp_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// ValidID reports whether id has NewID's form (the only ids ever stored; a
// path segment is checked before it names a file or a key).
func ValidID(id string) bool {
	rest, ok := strings.CutPrefix(id, "exp_")
	if !ok || len(rest) != 26 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// Link signs and checks download links: an HMAC-SHA256 over the company,
// the job id and the expiry, so a link names one job of one company until
// one time.
type Link struct {
	Key []byte
}

func (l Link) mac(company, id string, expires int64) []byte {
	m := hmac.New(sha256.New, l.Key)
	m.Write([]byte("erpgate export link\x00"))
	m.Write([]byte(company))
	m.Write([]byte{0})
	m.Write([]byte(id))
	m.Write([]byte{0})
	m.Write([]byte(strconv.FormatInt(expires, 10)))
	return m.Sum(nil)
}

// Sign is the signature of a link to job id of company until expires.
func (l Link) Sign(company, id string, expires time.Time) string {
	return base64.RawURLEncoding.EncodeToString(l.mac(company, id, expires.Unix()))
}

// Link errors.
var (
	ErrBadLink     = errors.New("exportjob: the link is not valid")
	ErrExpiredLink = errors.New("exportjob: the link expired")
)

// Check verifies a link's parameters as they came (expires in Unix
// seconds): ErrBadLink when they were not signed by this key for this
// job, ErrExpiredLink when they were but expired before now.
func (l Link) Check(company, id, expires, sig string, now time.Time) error {
	exp, err := strconv.ParseInt(expires, 10, 64)
	if err != nil || company == "" || len(sig) > 64 {
		return ErrBadLink
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, l.mac(company, id, exp)) {
		return ErrBadLink
	}
	if now.Unix() >= exp {
		return ErrExpiredLink
	}
	return nil
}

var randRead = rand.Read
