package store

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// bucketDocs holds small named documents, one nested bucket per
// collection: the Mokka orders the gateway tracks, the Moka OAuth tokens.
// It is created on first use, so databases from before it need no
// migration.
var bucketDocs = []byte("docs")

// PutDoc stores value as the document key of collection coll and, in the
// same transaction, appends in to the outbox as Append does (dedupe, bound,
// ErrFull with nothing written). A state change and the record that
// reports it upstream are therefore never separated by a crash.
func (s *Store) PutDoc(coll, key string, value []byte, in []Input) (AppendResult, error) {
	if err := checkDocName(coll, key); err != nil {
		return AppendResult{}, err
	}
	items, err := s.prepare(in)
	if err != nil {
		return AppendResult{}, err
	}
	var (
		res   AppendResult
		added int64
	)
	err = s.update(func(tx *bolt.Tx) error {
		if err := s.appendItems(tx, items, nil, &res, &added); err != nil {
			return err
		}
		b, err := docBucket(tx, coll)
		if err != nil {
			return err
		}
		return b.Put([]byte(key), value)
	})
	if errors.Is(err, ErrFull) {
		s.waitForSpace(added)
		return AppendResult{}, ErrFull
	}
	if err != nil {
		return AppendResult{}, fmt.Errorf("store: put %s/%s: %w", coll, key, err)
	}
	if res.Appended > 0 {
		s.signalAll()
	}
	return res, nil
}

// GetDoc returns a copy of the document key of coll; ok is false if there
// is none.
func (s *Store) GetDoc(coll, key string) (value []byte, ok bool, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		b := readDocBucket(tx, coll)
		if b == nil {
			return nil
		}
		if v := b.Get([]byte(key)); v != nil {
			value, ok = append([]byte(nil), v...), true
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("store: get %s/%s: %w", coll, key, err)
	}
	return value, ok, nil
}

// Docs calls fn for every document of coll in key order. The value is only
// valid during the call. fn must not call the store.
func (s *Store) Docs(coll string, fn func(key string, value []byte) error) error {
	err := s.view(func(tx *bolt.Tx) error {
		b := readDocBucket(tx, coll)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				return nil // a nested bucket: not a document
			}
			return fn(string(k), v)
		})
	})
	if err != nil {
		return fmt.Errorf("store: list %s: %w", coll, err)
	}
	return nil
}

// DeleteDoc removes the document key of coll; a missing one is no error.
func (s *Store) DeleteDoc(coll, key string) error {
	err := s.update(func(tx *bolt.Tx) error {
		b, err := docBucket(tx, coll)
		if err != nil {
			return err
		}
		return b.Delete([]byte(key))
	})
	if err != nil {
		return fmt.Errorf("store: delete %s/%s: %w", coll, key, err)
	}
	return nil
}

func checkDocName(coll, key string) error {
	switch {
	case coll == "" || key == "":
		return errors.New("store: document needs a collection and a key")
	case len(coll) > 255 || len(key) > bolt.MaxKeySize:
		return errors.New("store: document name too long")
	}
	return nil
}

func docBucket(tx *bolt.Tx, coll string) (*bolt.Bucket, error) {
	root, err := tx.CreateBucketIfNotExists(bucketDocs)
	if err != nil {
		return nil, err
	}
	return root.CreateBucketIfNotExists([]byte(coll))
}

func readDocBucket(tx *bolt.Tx, coll string) *bolt.Bucket {
	root := tx.Bucket(bucketDocs)
	if root == nil {
		return nil
	}
	return root.Bucket([]byte(coll))
}
