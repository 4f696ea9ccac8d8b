package geo

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxIDLen bounds a registry id, in bytes.
const maxIDLen = 128

// idPunctuation is the punctuation an id may hold besides letters, marks,
// digits and inner spaces: what station, sensor and site names and codes
// use (GTFS "de:11000:900100001", "St. Paul's (North)"), and nothing that
// separates paths, lists or markup.
const idPunctuation = " -_.:()'"

// CheckID reports whether id may name a station, sensor or site: 1 to 128
// bytes of UTF-8, starting with a letter or digit, then letters, marks and
// digits of any script, spaces and - _ . : ( ) ' — so an id can never be a
// path ("../../etc"), a list, a query or markup where it is written out.
func CheckID(id string) error {
	switch {
	case id == "":
		return errors.New("id is empty")
	case len(id) > maxIDLen:
		return fmt.Errorf("id of %d bytes; at most %d", len(id), maxIDLen)
	case !utf8.ValidString(id):
		return errors.New("id is not valid UTF-8")
	}
	first, _ := utf8.DecodeRuneInString(id)
	if !unicode.IsLetter(first) && !unicode.IsDigit(first) {
		return fmt.Errorf("id %q must start with a letter or digit", id)
	}
	if strings.HasSuffix(id, " ") {
		return fmt.Errorf("id %q ends with a space", id)
	}
	for _, r := range id {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r) && !strings.ContainsRune(idPunctuation, r) {
			return fmt.Errorf("id %q holds %q; ids are letters, digits, spaces and - _ . : ( ) '", id, r)
		}
	}
	return nil
}

// ErrNoEntries is returned by PutFile for a file that holds no entry:
// emptying a set is done by Clear, on purpose, never by an empty upload.
var ErrNoEntries = errors.New("holds no entries; a set is emptied only on purpose")
