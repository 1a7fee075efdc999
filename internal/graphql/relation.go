package graphql

import (
	"encoding/json"
	"net/url"
	"strconv"

	"github.com/erpgate/erpgate/contract"
)

// relTask is one relation field (one collected field of the query) for
// every parent object of a level: its keys are fetched together, in
// batched list calls, never one call per parent.
type relTask struct {
	g       *collected
	first   int
	q       url.Values // the relation's own filter and sort
	none    bool       // its filter matches nothing
	err     *Error     // its arguments are wrong: every parent fails
	parents []relParent
}

// relParent is one parent's value of the relation and its join key.
type relParent struct {
	v   *outNode
	key relKey
	has bool // false: the parent's from is null or missing
}

// relKey is a join key: its text (string or number alike, so "7" and 7
// join) and how it goes into an `in` filter.
type relKey struct {
	text string
	str  bool
}

// readKey reads a join key from a JSON member.
func readKey(raw json.RawMessage) (relKey, bool) {
	if isNull(raw) {
		return relKey{}, false
	}
	switch c := raw[0]; {
	case c == '"':
		s, ok := unquote(raw)
		return relKey{text: string(s), str: true}, ok
	case c == '-' || (c >= '0' && c <= '9'):
		return relKey{text: string(raw)}, true
	}
	return relKey{}, false
}

// addRelation registers v (parent src's value of relation g) with the
// level's task for g.
func (e *executor) addRelation(v *outNode, g *collected, src jsonObject) {
	t := e.taskIdx[g]
	if t == nil {
		t = &relTask{g: g, q: url.Values{}}
		if g.meta.shape != joinOne {
			args := g.fields[0].ArgumentMap(e.p.vars)
			t.first, t.err = firstOf(args, g.meta.defFirst)
			if t.err == nil {
				t.q, t.none, t.err = e.listQuery(g.fields[0], args)
			}
		}
		e.taskIdx[g] = t
		e.tasks = append(e.tasks, t)
	}
	key, has := readKey(src.get(g.meta.from))
	t.parents = append(t.parents, relParent{v: v, key: key, has: has})
}

// relChunk is one batched call's keys and what its pages returned.
type relChunk struct {
	t        *relTask
	keys     []relKey
	q        url.Values
	items    []json.RawMessage
	err      *Error
	tooLarge bool
}

// runRelations resolves the registered relations level by level: one
// Fetch per level (plus one per further page), the children of a level
// registering the next level's relations.
func (e *executor) runRelations() {
	for len(e.tasks) > 0 && e.objects <= maxObjects {
		tasks := e.tasks
		e.tasks, e.taskIdx = nil, map[*collected]*relTask{}
		e.runLevel(tasks)
	}
}

func (e *executor) runLevel(tasks []*relTask) {
	var chunks []*relChunk
	live := tasks[:0:0]
	for _, t := range tasks {
		err := t.err
		if err == nil {
			err = e.authorize(t.g.meta.backend, false)
		}
		if err != nil {
			vs := make([]*outNode, len(t.parents))
			for i, p := range t.parents {
				vs[i] = p.v
			}
			e.failBatch(vs, err)
			continue
		}
		live = append(live, t)
		if t.none {
			continue
		}
		seen := map[string]bool{}
		var keys []relKey
		for _, p := range t.parents {
			if p.has && !seen[p.key.text] {
				seen[p.key.text] = true
				keys = append(keys, p.key)
			}
		}
		for len(keys) > 0 {
			n := min(len(keys), MaxBatchKeys)
			chunks = append(chunks, &relChunk{t: t, keys: keys[:n], q: relationQuery(t, keys[:n])})
			keys = keys[n:]
		}
	}
	pending := chunks
	for page := 1; len(pending) > 0; page++ {
		calls := make([]Call, len(pending))
		for i, c := range pending {
			q := cloneQuery(c.q)
			q.Set("page", strconv.Itoa(page))
			calls[i] = Call{Backend: c.t.g.meta.backend, Op: OpList, Query: q}
		}
		res := e.fetch(calls)
		var next []*relChunk
		for i, c := range pending {
			r := res[i]
			if r.Err != nil {
				c.err = r.Err
				continue
			}
			var items []json.RawMessage
			if !isNull(r.Data) {
				var ok bool
				if !validJSON(r.Data) {
					c.err = notA(c.t.g, "list")
					continue
				}
				if items, ok = splitArray(r.Data); !ok {
					c.err = notA(c.t.g, "list")
					continue
				}
			}
			c.items = append(c.items, items...)
			if r.HasNext {
				if page == maxRelationPages {
					c.tooLarge = true
					continue
				}
				next = append(next, c)
			}
		}
		pending = next
	}
	byTask := map[*relTask][]*relChunk{}
	for _, c := range chunks {
		byTask[c.t] = append(byTask[c.t], c)
	}
	for _, t := range live {
		e.distribute(t, byTask[t])
	}
}

// relationQuery is a chunk's list query: the relation's filter and sort,
// the keys' filter on `to`, the largest page.
func relationQuery(t *relTask, keys []relKey) url.Values {
	q := cloneQuery(t.q)
	to := t.g.meta.to
	if len(keys) == 1 {
		q.Add("filter", to+":eq:"+keys[0].text)
	} else {
		buf := make([]byte, 0, len(to)+4+len(keys)*12)
		buf = append(buf, to...)
		buf = append(buf, ":in:"...)
		for i, k := range keys {
			if i > 0 {
				buf = append(buf, ',')
			}
			if k.str {
				buf = jsonString(buf, k.text)
			} else {
				buf = append(buf, k.text...)
			}
		}
		q.Add("filter", string(buf))
	}
	q.Set("limit", strconv.Itoa(relationLimit))
	return q
}

// distribute gives each parent of t its matches, grouped by `to`.
func (e *executor) distribute(t *relTask, chunks []*relChunk) {
	meta := t.g.meta
	ent := e.s.ast.Types[meta.entity]
	chunkOf := map[string]*relChunk{}
	groups := map[string][]jsonObject{}
	for _, c := range chunks {
		for _, k := range c.keys {
			chunkOf[k.text] = c
		}
		if c.err != nil || c.tooLarge {
			continue
		}
		for _, raw := range c.items {
			obj, ok := e.decodeObject(raw)
			if !ok {
				continue
			}
			k, ok := readKey(obj.get(meta.to))
			if ok && chunkOf[k.text] == c {
				groups[k.text] = append(groups[k.text], obj)
			}
		}
	}
	failed := map[*relChunk][]*outNode{}
	var failedOrder []*relChunk
	for _, p := range t.parents {
		var matches []jsonObject
		if p.has && !t.none {
			c := chunkOf[p.key.text]
			if c.err != nil || c.tooLarge {
				if failed[c] == nil {
					failedOrder = append(failedOrder, c)
				}
				failed[c] = append(failed[c], p.v)
				continue
			}
			matches = groups[p.key.text]
		}
		switch meta.shape {
		case joinOne:
			if len(matches) > 0 {
				e.object(p.v, ent, e.sub(t.g, ent), matches[0])
			}
		case joinList:
			p.v.kind = vList
			n := min(len(matches), t.first)
			p.v.kids = make([]*outNode, n)
			for i, obj := range matches[:n] {
				c := e.node()
				*c = outNode{parent: p.v, index: i, typ: t.g.def.Type.Elem, field: t.g.fields[0]}
				p.v.kids[i] = c
				e.object(c, ent, e.sub(t.g, ent), obj)
			}
		case joinConn:
			n := min(len(matches), t.first)
			e.connection(p.v, t.g, meta.entity, &connPage{
				objs: matches[:n], total: int64(len(matches)), hasNext: len(matches) > n,
			})
		}
	}
	for _, c := range failedOrder {
		err := c.err
		if c.tooLarge {
			err = &Error{
				Message: "relation too large: more than " + strconv.Itoa(maxRelationPages*relationLimit) + " objects for one batch; filter it",
				Code:    contract.CodeBadRequest,
			}
		}
		e.failBatch(failed[c], err)
	}
}
