package pgstore

import "github.com/grainchat/grainchat/storage"

// ViewQuery exposes viewQuery to the external tests, which EXPLAIN it.
func ViewQuery(q storage.InboxQuery, viewer bool) (string, []any) {
	return viewQuery(q, viewSpec{viewer: viewer})
}
