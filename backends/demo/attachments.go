package demo

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
)

// attachmentsPath is the last segment of an invoice's attachments:
// POST /v2/invoices/{id}/attachments.
const attachmentsPath = "attachments"

// attachedFile is what the demo keeps of an upload: its size and SHA-256,
// so a client (or a test) can prove the bytes arrived whole. The bytes
// themselves are hashed as they stream in and never stored.
type attachedFile struct {
	Field       string `json:"field,omitempty"`
	Filename    string `json:"filename,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
}

// serveAttachments lists (GET) or takes (POST) an invoice's uploads. An upload is a multipart/form-data
// body (each part hashed as it streams) or any other body (hashed whole),
// in constant memory whatever its size. 201 with the files' sizes and
// hashes, which GET lists afterwards; 404 for an unknown invoice; 400 for
// a broken multipart body (a body cut off before its end is one): nothing
// is recorded then.
func (s *Server) serveAttachments(w http.ResponseWriter, r *http.Request, c *company, v, id string) {
	if v != v2 {
		notFoundPath(w, r)
		return
	}
	key := c.id + "/" + id
	s.mu.RLock()
	_, ok := c.invoices[id]
	have := append([]attachedFile{}, s.attachments[key]...)
	s.mu.RUnlock()
	if !ok {
		writeProblem(w, newProblem(http.StatusNotFound, "not-found", "invoice %q does not exist", id))
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		writeJSON(w, http.StatusOK, have)
		return
	case http.MethodPost:
	default:
		methodNotAllowed(w, "GET, HEAD, POST")
		return
	}
	var files []attachedFile
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "multipart/form-data" {
		mr := multipart.NewReader(r.Body, params["boundary"])
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				writeProblem(w, newProblem(http.StatusBadRequest, "bad-multipart", "the multipart body is malformed or incomplete"))
				return
			}
			f, err := hashPart(part.Header.Get("Content-Type"), part)
			if err != nil {
				writeProblem(w, newProblem(http.StatusBadRequest, "bad-multipart", "the multipart body is malformed or incomplete"))
				return
			}
			f.Field, f.Filename = part.FormName(), part.FileName()
			files = append(files, f)
		}
		if len(files) == 0 {
			writeProblem(w, newProblem(http.StatusBadRequest, "no-parts", "the multipart body has no parts"))
			return
		}
	} else {
		f, err := hashPart(r.Header.Get("Content-Type"), r.Body)
		if err != nil {
			writeProblem(w, newProblem(http.StatusBadRequest, "incomplete-body", "the body ended before its end"))
			return
		}
		files = append(files, f)
	}
	var total int64
	for _, f := range files {
		total += f.Size
	}
	s.mu.Lock()
	if s.attachments == nil {
		s.attachments = make(map[string][]attachedFile)
	}
	s.attachments[key] = append(s.attachments[key], files...)
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{"invoice_id": id, "size": total, "files": files})
}

// hashPart streams body into SHA-256.
func hashPart(contentType string, body io.Reader) (attachedFile, error) {
	h := sha256.New()
	n, err := io.Copy(h, body)
	if err != nil {
		return attachedFile{}, err
	}
	return attachedFile{ContentType: contentType, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}
