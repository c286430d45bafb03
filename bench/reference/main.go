// The compiled reference for bench/search.py: hybrid POST /search in Go (net/http, pgx's pgconn), running
// the app's own statement for each of the bench's query texts and answering with the app's JSON (same ids,
// scores, cursor and signed URLs). It is the bar the Python search path is measured against in the same
// run: what a compiled read path costs per request on this machine.
//
// What it does per request, as the app does: decode and check the body, look up the query (the app's text
// model is bypassed with a lookup in the bench too), encode the query vector (pgvector's binary format),
// send the settings and the statement pipelined in one round trip with one Sync (no prepared statement:
// planned for its values, as the app's are), read the rows (binary), sign or reuse the page's twenty URLs
// (the app's window cache), write the cursor and the JSON.
//
// What it leaves out: authentication (the bench runs the app's default tenant, with none), the plan (the
// statement's text and its other parameters come from bench/_reference_queries.py, as the app made them),
// logging and metrics.
//
//	go build -o reference . (GOPATH mode: Debian's golang-go and golang-github-jackc-pgx-v4-dev)
//	./reference -queries FILE.json -database-url URL -port N
package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgconn"
)

type queryFile struct {
	SetConfig        string                `json:"set_config"`
	Model            string                `json:"model"`
	Mode             string                `json:"mode"`
	SigningSecret    string                `json:"signing_secret"`
	PublicBaseURL    string                `json:"public_base_url"`
	URLExpirySeconds int64                 `json:"url_expiry_seconds"`
	Queries          map[string]*statement `json:"queries"`
}

type statement struct {
	SQL         string    `json:"sql"`
	Params      []*string `json:"params"` // base64, or null for NULL
	Types       []uint32  `json:"types"`
	Formats     []int16   `json:"formats"`
	VectorParam int       `json:"vector_param"`
	Vector      []float32 `json:"vector"`
	Fingerprint string    `json:"fingerprint"`
	Limit       int       `json:"limit"`
	params      [][]byte
}

type server struct {
	q       *queryFile
	conns   chan *pgconn.PgConn
	url     string
	results []int16
	urls    *urlCache
}

func main() {
	queries := flag.String("queries", "", "bench/_reference_queries.py's file")
	databaseURL := flag.String("database-url", "", "")
	port := flag.Int("port", 8000, "")
	poolSize := flag.Int("pool", 16, "connections at most")
	flag.Parse()

	raw, err := os.ReadFile(*queries)
	if err != nil {
		log.Fatal(err)
	}
	var q queryFile
	if err := json.Unmarshal(raw, &q); err != nil {
		log.Fatal(err)
	}
	for _, st := range q.Queries {
		st.params = make([][]byte, len(st.Params))
		for i, p := range st.Params {
			if p != nil {
				if st.params[i], err = base64.StdEncoding.DecodeString(*p); err != nil {
					log.Fatal(err)
				}
			}
		}
	}
	s := &server{
		q:       &q,
		conns:   make(chan *pgconn.PgConn, *poolSize),
		url:     *databaseURL,
		results: []int16{1}, // one code: every column binary
		urls: &urlCache{
			secret: []byte(q.SigningSecret), base: q.PublicBaseURL, window: max64(1, q.URLExpirySeconds/2),
			urls: map[string]cachedURL{},
		},
	}
	for i := 0; i < *poolSize; i++ {
		s.conns <- nil // a slot: connected on first use
	}
	http.HandleFunc("/search", s.search)
	http.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"status":"ok"}`)) })
	log.Fatal(http.ListenAndServe(fmt.Sprintf("127.0.0.1:%d", *port), nil))
}

type searchRequest struct {
	Query *string `json:"query"`
	Limit *int    `json:"limit"`
}

func problem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	body, _ := json.Marshal(map[string]any{
		"type": "about:blank", "title": http.StatusText(status), "status": status, "detail": detail,
	})
	w.Write(body)
}

func (s *server) search(w http.ResponseWriter, r *http.Request) {
	started := time.Now()
	if r.Method != http.MethodPost {
		problem(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	var req searchRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 65536)).Decode(&req); err != nil {
		problem(w, http.StatusUnprocessableEntity, "JSON decode error")
		return
	}
	if req.Query == nil || len(*req.Query) == 0 || len(*req.Query) > 1000 {
		problem(w, http.StatusUnprocessableEntity, "query: a text of 1 to 1000 characters")
		return
	}
	limit := 20
	if req.Limit != nil {
		limit = *req.Limit
	}
	if limit < 1 || limit > 100 {
		problem(w, http.StatusUnprocessableEntity, "limit: from 1 to 100")
		return
	}
	st := s.q.Queries[*req.Query]
	if st == nil || st.Limit != limit {
		problem(w, http.StatusBadRequest, "not one of the bench's queries")
		return
	}
	params := make([][]byte, len(st.params))
	copy(params, st.params)
	params[st.VectorParam] = vectorBytes(st.Vector)

	conn := <-s.conns
	rows, fields, err := s.read(r.Context(), &conn, st, params)
	s.conns <- conn
	if err != nil {
		log.Print(err)
		problem(w, http.StatusServiceUnavailable, "the database is unavailable")
		return
	}
	body := s.answer(st, rows, fields, started)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// read runs the settings and the statement in one round trip, connecting the pool's slot first if need be.
func (s *server) read(
	ctx context.Context, conn **pgconn.PgConn, st *statement, params [][]byte,
) ([][][]byte, map[string]int, error) {
	if *conn == nil || (*conn).IsClosed() {
		c, err := pgconn.Connect(ctx, s.url)
		if err != nil {
			return nil, nil, err
		}
		*conn = c
	}
	batch := &pgconn.Batch{}
	batch.ExecParams(s.q.SetConfig, nil, nil, nil, nil)
	batch.ExecParams(st.SQL, params, st.Types, st.Formats, s.results)
	results, err := (*conn).ExecBatch(ctx, batch).ReadAll()
	if err != nil {
		return nil, nil, err
	}
	last := results[len(results)-1]
	fields := make(map[string]int, len(last.FieldDescriptions))
	for i, f := range last.FieldDescriptions {
		fields[string(f.Name)] = i
	}
	return last.Rows, fields, nil
}

func vectorBytes(v []float32) []byte {
	b := make([]byte, 4+4*len(v))
	binary.BigEndian.PutUint16(b, uint16(len(v)))
	for i, x := range v {
		binary.BigEndian.PutUint32(b[4+4*i:], math.Float32bits(x))
	}
	return b
}

// answer writes the app's SearchResponse for the statement's rows (limit + 1: the extra one says there is
// a next page).
func (s *server) answer(st *statement, rows [][][]byte, f map[string]int, started time.Time) []byte {
	page := rows
	if len(page) > st.Limit {
		page = page[:st.Limit]
	}
	keys := make([]string, 0, 2*len(page))
	for _, row := range page {
		keys = append(keys, string(row[f["storage_key"]]))
	}
	for _, row := range page {
		keys = append(keys, "thumbnails/"+uuidText(row[f["tenant_id"]])+"/"+uuidText(row[f["id"]])+".webp")
	}
	urls := s.urls.getMany(keys)

	var b bytes.Buffer
	b.Grow(8192)
	b.WriteString(`{"results":[`)
	for i, row := range page {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"id":"`)
		b.WriteString(uuidText(row[f["id"]]))
		b.WriteString(`","score":`)
		b.WriteString(pyFloat(round6(float8(row[f["score"]]))))
		b.WriteString(`,"title":`)
		textOrNull(&b, row[f["title"]])
		b.WriteString(`,"filename":`)
		textOrNull(&b, row[f["filename"]])
		b.WriteString(`,"tags":`)
		textArray(&b, row[f["tags"]])
		b.WriteString(`,"created_at":`)
		timestamp(&b, row[f["created_at"]], 0, true)
		b.WriteString(`,"url":`)
		jsonString(&b, urls[i])
		b.WriteString(`,"thumbnail_url":`)
		jsonString(&b, urls[len(page)+i])
		b.WriteString(`,"taken_at":`)
		takenAt(&b, row[f["taken_at_local"]], row[f["taken_at"]])
		b.WriteString(`,"camera":`)
		camera(&b, row[f["camera_make"]], row[f["camera_model"]])
		b.WriteString(`,"place":`)
		place(&b, row[f["place_city"]], row[f["place_region"]], row[f["place_country"]], row[f["place_country_code"]])
		b.WriteString(`,"auto_tags":`)
		textArray(&b, row[f["auto_tags"]])
		b.WriteByte('}')
	}
	b.WriteString(`],"next_cursor":`)
	if len(rows) > st.Limit {
		last := page[len(page)-1]
		values, _ := json.Marshal([]string{pyHex(float8(last[f["sort_key"]])), uuidText(last[f["id"]]), st.Fingerprint})
		// Python's json.dumps separates with ", ".
		cursor := strings.ReplaceAll(string(values), `","`, `", "`)
		b.WriteByte('"')
		b.WriteString(base64.RawURLEncoding.EncodeToString([]byte(cursor)))
		b.WriteByte('"')
	} else {
		b.WriteString("null")
	}
	b.WriteString(`,"took_ms":`)
	tookMs := float64(time.Since(started).Microseconds()) / 1000
	b.WriteString(pyFloat(math.Round(tookMs*100) / 100))
	b.WriteString(`,"model":`)
	jsonString(&b, s.q.Model)
	b.WriteString(`,"mode":`)
	jsonString(&b, s.q.Mode)
	b.WriteByte('}')
	return b.Bytes()
}

func float8(v []byte) float64 { return math.Float64frombits(binary.BigEndian.Uint64(v)) }

// round6 is Python's round(x, 6): correctly rounded from the double's exact value.
func round6(x float64) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'f', 6, 64), 64)
	return v
}

// pyFloat writes a float as pydantic's JSON does: the shortest text that reads back, with ".0" when whole.
func pyFloat(x float64) string {
	s := strconv.FormatFloat(x, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEn") {
		s += ".0"
	}
	return s
}

// pyHex is Python's float.hex() for the cursor's sort key.
func pyHex(x float64) string {
	if x == 0 {
		if math.Signbit(x) {
			return "-0x0.0p+0"
		}
		return "0x0.0p+0"
	}
	bits := math.Float64bits(x)
	sign := ""
	if bits>>63 == 1 {
		sign = "-"
	}
	exp := int((bits>>52)&0x7ff) - 1023
	mantissa := bits & (1<<52 - 1)
	lead := "1"
	if exp == -1023 { // subnormal
		lead, exp = "0", -1022
	}
	return fmt.Sprintf("%s0x%s.%013xp%+d", sign, lead, mantissa, exp)
}

func uuidText(v []byte) string {
	var buf [36]byte
	hex.Encode(buf[0:8], v[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], v[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], v[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], v[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:], v[10:16])
	return string(buf[:])
}

func textOrNull(b *bytes.Buffer, v []byte) {
	if v == nil {
		b.WriteString("null")
		return
	}
	jsonString(b, string(v))
}

// textArray writes a one-dimensional text[] in PostgreSQL's binary format as a JSON list ([] for NULL).
func textArray(b *bytes.Buffer, v []byte) {
	b.WriteByte('[')
	if v != nil && binary.BigEndian.Uint32(v[0:4]) == 1 {
		n := int(binary.BigEndian.Uint32(v[12:16]))
		pos := 20
		for i := 0; i < n; i++ {
			size := int(int32(binary.BigEndian.Uint32(v[pos:])))
			pos += 4
			if i > 0 {
				b.WriteByte(',')
			}
			if size < 0 {
				b.WriteString("null")
				continue
			}
			jsonString(b, string(v[pos:pos+size]))
			pos += size
		}
	}
	b.WriteByte(']')
}

var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func pgTime(v []byte) time.Time {
	return pgEpoch.Add(time.Duration(int64(binary.BigEndian.Uint64(v))) * time.Microsecond)
}

// timestamp writes a binary timestamp as pydantic does: ISO 8601, microseconds when there are any, "Z" for
// UTC, "+hh:mm" for another offset (in seconds), nothing for a naive one.
func timestamp(b *bytes.Buffer, v []byte, offset int, aware bool) {
	if v == nil {
		b.WriteString("null")
		return
	}
	t := pgTime(v).Add(time.Duration(offset) * time.Second)
	b.WriteByte('"')
	b.WriteString(t.Format("2006-01-02T15:04:05"))
	if us := t.Nanosecond() / 1000; us != 0 {
		fmt.Fprintf(b, ".%06d", us)
	}
	if aware {
		if offset == 0 {
			b.WriteByte('Z')
		} else {
			sign, o := '+', offset
			if o < 0 {
				sign, o = '-', -o
			}
			fmt.Fprintf(b, "%c%02d:%02d", sign, o/3600, o%3600/60)
		}
	}
	b.WriteByte('"')
}

// takenAt is images.schemas.taken_at_shown: the camera's wall-clock time, with its offset when the instant
// is known.
func takenAt(b *bytes.Buffer, local, instant []byte) {
	if local == nil || instant == nil {
		timestamp(b, local, 0, false)
		return
	}
	offset := int(pgTime(local).Sub(pgTime(instant)) / time.Second)
	timestamp(b, instant, offset, true)
}

// camera is images.schemas.camera_name.
func camera(b *bytes.Buffer, make_, model []byte) {
	mk, md := string(make_), string(model)
	if mk != "" && md != "" && strings.HasPrefix(strings.ToLower(md), strings.ToLower(mk)) {
		jsonString(b, md)
		return
	}
	parts := make([]string, 0, 2)
	for _, p := range []string{mk, md} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		b.WriteString("null")
		return
	}
	jsonString(b, strings.Join(parts, " "))
}

// place is images.schemas.place_of.
func place(b *bytes.Buffer, city, region, country, code []byte) {
	if city == nil && country == nil {
		b.WriteString("null")
		return
	}
	b.WriteString(`{"city":`)
	textOrNull(b, city)
	b.WriteString(`,"region":`)
	textOrNull(b, region)
	b.WriteString(`,"country":`)
	textOrNull(b, country)
	b.WriteString(`,"country_code":`)
	textOrNull(b, code)
	b.WriteByte('}')
}

// jsonString writes s as pydantic does: UTF-8 as is, quotes, backslashes and control characters escaped.
func jsonString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			b.WriteString(`\"`)
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\b':
			b.WriteString(`\b`)
		case c == '\f':
			b.WriteString(`\f`)
		case c < 0x20:
			fmt.Fprintf(b, `\u%04x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}

// urlCache is storage/urls.py's UrlCache with storage/signing.py's signature: a URL is reused within its
// window and expires at the end of the next one.
type urlCache struct {
	secret []byte
	base   string
	window int64
	mu     sync.Mutex
	urls   map[string]cachedURL
}

type cachedURL struct {
	window int64
	url    string
}

func (c *urlCache) getMany(keys []string) []string {
	now := float64(time.Now().UnixNano()) / 1e9
	window := int64(now) / c.window
	out := make([]string, len(keys))
	c.mu.Lock()
	for i, k := range keys {
		if u, ok := c.urls[k]; ok && u.window == window {
			out[i] = u.url
		}
	}
	c.mu.Unlock()
	expiresIn := max64(1, int64(float64((window+2)*c.window)-now))
	for i, k := range keys {
		if out[i] == "" {
			out[i] = c.sign(k, time.Now().Unix()+expiresIn)
			c.mu.Lock()
			if len(c.urls) >= 20000 {
				c.urls = map[string]cachedURL{}
			}
			c.urls[k] = cachedURL{window, out[i]}
			c.mu.Unlock()
		}
	}
	return out
}

func (c *urlCache) sign(key string, expiresAt int64) string {
	expires := strconv.FormatInt(expiresAt, 10)
	mac := hmac.New(sha256.New, c.secret)
	mac.Write([]byte("GET\n" + key + "\n" + expires + "\n\n"))
	return c.base + "/files/" + key + "?expires=" + expires + "&sig=" + hex.EncodeToString(mac.Sum(nil))
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}
