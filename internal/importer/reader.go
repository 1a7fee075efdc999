// Package importer is the Caddy-free core of `POST /api/{v}/{backend}/import`:
// it reads an NDJSON or CSV stream row by row, with line numbers
// and a bounded row size, turns each row into a JSON object, and runs the
// rows through a create function with bounded concurrency, collecting a
// capped list of per-row results. It never holds more than one row per
// worker plus the capped results: memory does not grow with the file.
package importer

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"strconv"
	"strings"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/envelope"
)

// Format is the syntax of an import body.
type Format int

// The formats an import takes, chosen by the request's Content-Type.
const (
	NDJSON Format = iota + 1
	CSV
)

// FormatFor maps a Content-Type to a Format: application/x-ndjson (or
// application/ndjson, application/jsonl) → NDJSON; text/csv → CSV.
func FormatFor(contentType string) (Format, bool) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return 0, false
	}
	switch mt {
	case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines":
		return NDJSON, true
	case "text/csv":
		return CSV, true
	}
	return 0, false
}

// Problem is why a row was refused at the edge.
type Problem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// Row is one data row of the input: its first line number (1-based, as an
// editor counts) and either the JSON object to create or the problem that
// refused it.
type Row struct {
	Line    int
	Body    []byte // a JSON object; valid until the next call to Next
	Problem *Problem
}

// Reader yields an import's rows in order. Next returns io.EOF after the
// last row; any other error ends the import (the stream cannot be read on).
type Reader interface {
	Next() (Row, error)
}

// ErrRowTooLarge ends a CSV import whose row is over the limit: a CSV
// record may span lines, so there is no safe place to resume.
var ErrRowTooLarge = errors.New("row over the size limit")

// NewReader returns the reader of f over src; no row may be longer than
// maxRow bytes.
func NewReader(f Format, src io.Reader, maxRow int) (Reader, error) {
	switch f {
	case NDJSON:
		return newNDJSON(src, maxRow), nil
	case CSV:
		return newCSV(src, maxRow)
	}
	return nil, errors.New("importer: unknown format")
}

// ---- NDJSON ----

type ndjsonReader struct {
	br     *bufio.Reader
	max    int
	line   int
	buf    []byte
	failed error
}

func newNDJSON(src io.Reader, maxRow int) *ndjsonReader {
	return &ndjsonReader{br: bufio.NewReaderSize(src, 64<<10), max: maxRow}
}

// Next skips blank lines; a line over the limit is refused (and skipped to
// its end without being kept), as is one that is not a single JSON object.
func (r *ndjsonReader) Next() (Row, error) {
	for {
		if r.failed != nil {
			return Row{}, r.failed
		}
		r.line++
		r.buf = r.buf[:0]
		tooLong := false
		for {
			chunk, err := r.br.ReadSlice('\n')
			if !tooLong {
				if len(r.buf)+len(chunk) > r.max+2 { // + "\r\n"
					tooLong, r.buf = true, r.buf[:0]
				} else {
					r.buf = append(r.buf, chunk...)
				}
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if err != nil {
				if err != io.EOF {
					r.failed = err
					return Row{}, err
				}
				if len(chunk) == 0 && len(r.buf) == 0 && !tooLong {
					return Row{}, io.EOF
				}
				r.failed = io.EOF // the last line had no newline: answer it, then stop
			}
			break
		}
		if tooLong {
			return Row{Line: r.line, Problem: &Problem{Code: contract.CodePayloadTooLarge,
				Message: "the row is over " + strconv.Itoa(r.max) + " bytes"}}, nil
		}
		line := bytes.TrimSpace(r.buf)
		if len(line) == 0 {
			continue
		}
		if line[0] != '{' || !json.Valid(line) {
			return Row{Line: r.line, Problem: &Problem{Code: contract.CodeBadRequest,
				Message: "the line is not one JSON object"}}, nil
		}
		return Row{Line: r.line, Body: line}, nil
	}
}

// ---- CSV ----

// column is a CSV header cell: the field's name and how its cells are
// written in JSON. A header `price:number` makes the price cells JSON
// numbers, `active:bool` booleans, `total:json` any JSON value; other cells
// are strings. An empty cell leaves the field out.
type column struct {
	name string
	kind byte // 's', 'n', 'b', 'j'
}

type csvReader struct {
	cr   *csv.Reader
	lim  *limitReader
	max  int
	cols []column
	buf  []byte
}

// limitReader fails once more than max bytes are read without reset: it
// bounds what encoding/csv buffers for one record.
type limitReader struct {
	r   io.Reader
	n   int
	max int
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n > l.max {
		return 0, ErrRowTooLarge
	}
	if room := l.max + 1 - l.n; len(p) > room {
		p = p[:room]
	}
	n, err := l.r.Read(p)
	l.n += n
	return n, err
}

func newCSV(src io.Reader, maxRow int) (*csvReader, error) {
	// bufio inside encoding/csv reads ahead 4 KiB: the limit allows it.
	lim := &limitReader{r: src, max: maxRow + 8<<10}
	cr := csv.NewReader(lim)
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1 // a short or long row is that row's error, not the import's
	r := &csvReader{cr: cr, lim: lim, max: maxRow}
	head, err := cr.Read()
	if err != nil {
		if err == io.EOF {
			return nil, errors.New("the CSV has no header row")
		}
		return nil, errors.New("the CSV header row cannot be read: " + err.Error())
	}
	seen := make(map[string]bool, len(head))
	for i, h := range head {
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff") // a spreadsheet's byte order mark
		}
		c := column{name: strings.TrimSpace(h), kind: 's'}
		if name, kind, ok := strings.Cut(c.name, ":"); ok {
			switch kind {
			case "number":
				c.kind = 'n'
			case "bool":
				c.kind = 'b'
			case "json":
				c.kind = 'j'
			default:
				return nil, errors.New("the CSV header " + strconv.Quote(h) + " has an unknown type (number, bool, json)")
			}
			c.name = name
		}
		if c.name == "" || seen[c.name] {
			return nil, errors.New("the CSV header names a column twice or leaves one unnamed")
		}
		seen[c.name] = true
		r.cols = append(r.cols, c)
	}
	return r, nil
}

// Next returns the next record as a JSON object.
func (r *csvReader) Next() (Row, error) {
	for {
		before := r.cr.InputOffset()
		rec, err := r.cr.Read()
		if err != nil {
			if err == io.EOF {
				return Row{}, io.EOF
			}
			if errors.Is(err, ErrRowTooLarge) {
				return Row{}, err
			}
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				r.resetLimit()
				return Row{Line: pe.StartLine, Problem: &Problem{Code: contract.CodeBadRequest, Message: "CSV: " + pe.Err.Error()}}, nil
			}
			return Row{}, err
		}
		line, _ := r.cr.FieldPos(0)
		size := int(r.cr.InputOffset() - before)
		r.resetLimit()
		if len(rec) == 1 && rec[0] == "" {
			continue // encoding/csv skips empty lines; a lone empty cell is one too
		}
		if size > r.max {
			return Row{Line: line, Problem: &Problem{Code: contract.CodePayloadTooLarge,
				Message: "the row is over " + strconv.Itoa(r.max) + " bytes"}}, nil
		}
		if len(rec) != len(r.cols) {
			return Row{Line: line, Problem: &Problem{Code: contract.CodeBadRequest,
				Message: "the row has " + strconv.Itoa(len(rec)) + " cells; the header has " + strconv.Itoa(len(r.cols))}}, nil
		}
		body, p := r.object(rec)
		if p != nil {
			return Row{Line: line, Problem: p}, nil
		}
		return Row{Line: line, Body: body}, nil
	}
}

// resetLimit lets the next record be read: what encoding/csv has buffered
// but not yet parsed stays counted.
func (r *csvReader) resetLimit() {
	r.lim.n = 0
}

func (r *csvReader) object(rec []string) ([]byte, *Problem) {
	b := append(r.buf[:0], '{')
	n := 0
	for i, c := range r.cols {
		v := rec[i]
		if v == "" {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = envelope.AppendString(b, c.name)
		b = append(b, ':')
		switch c.kind {
		case 'n':
			if _, err := strconv.ParseFloat(v, 64); err != nil || !json.Valid([]byte(v)) {
				return nil, &Problem{Code: contract.CodeValidationFailed, Field: c.name, Message: c.name + " must be a number"}
			}
			b = append(b, v...)
		case 'b':
			t, err := strconv.ParseBool(v)
			if err != nil {
				return nil, &Problem{Code: contract.CodeValidationFailed, Field: c.name, Message: c.name + " must be true or false"}
			}
			b = strconv.AppendBool(b, t)
		case 'j':
			if !json.Valid([]byte(v)) {
				return nil, &Problem{Code: contract.CodeValidationFailed, Field: c.name, Message: c.name + " must be JSON"}
			}
			b = append(b, v...)
		default:
			b = envelope.AppendString(b, v)
		}
	}
	b = append(b, '}')
	r.buf = b
	return b, nil
}
