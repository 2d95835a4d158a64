package report

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/sentryha/sentry/internal/store"
)

// Save stores r as the report of its week (its JSON document), replacing
// one stored before. The store keeps reports for a year.
func Save(h *store.History, r *Report) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("report %s: save: %w", r.Week, err)
	}
	if err := h.PutReport(r.Week, b); err != nil {
		return fmt.Errorf("report %s: save: %w", r.Week, err)
	}
	return nil
}

// decodeStored reads one stored document, checking that it is the report
// of week and of a format this sentry reads.
func decodeStored(week string, b []byte) (*Report, error) {
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("stored report %s is damaged: %w", week, err)
	}
	switch {
	case r.Version > FormatVersion:
		return nil, fmt.Errorf("stored report %s has format %d; this sentry reads format %d or older", week, r.Version, FormatVersion)
	case r.Version < 1:
		return nil, fmt.Errorf("stored report %s is damaged: no format version", week)
	case r.Week != week:
		return nil, fmt.Errorf("stored report %s is damaged: it says it is the report of week %q", week, r.Week)
	}
	return &r, nil
}

// Decode reads a kept report's document (as Save stores it, or as the
// peer sends one of its own kept reports), checking that it is the report
// of week and of a format this sentry reads. It checks nothing else: a
// document from elsewhere needs the bounds of its reader.
func Decode(week string, b []byte) (*Report, error) { return decodeStored(week, b) }

// Load returns the stored report of week; false when none is stored. A
// damaged one is an error naming the week.
func Load(h *store.History, week string) (*Report, bool, error) {
	b, err := h.Report(week)
	if err != nil || b == nil {
		return nil, false, err
	}
	r, err := decodeStored(week, b)
	if err != nil {
		return nil, false, err
	}
	return r, true, nil
}

// Listed is one stored report, as `sentry report list` shows it.
type Listed struct {
	Week     string    `json:"week"`
	Headline string    `json:"headline"`
	Made     time.Time `json:"made"`
	Partial  bool      `json:"partial,omitempty"`
}

// List lists the stored reports, newest week first. A damaged one is left
// out and named in skipped, with why.
func List(h *store.History) (list []Listed, skipped []string, err error) {
	docs, err := h.Reports()
	if err != nil {
		return nil, nil, err
	}
	list = []Listed{}
	for _, d := range docs {
		r, err := decodeStored(d.Week, d.Doc)
		if err != nil {
			skipped = append(skipped, err.Error()+": skipped")
			continue
		}
		list = append(list, Listed{Week: r.Week, Headline: r.Headline(), Made: r.Made, Partial: r.Partial})
	}
	return list, skipped, nil
}
