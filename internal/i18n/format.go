package i18n

import (
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// separators: thousands and decimal, as a cafe reads them.
func (p *Printer) separators() (thousands, dec string) {
	if p.lang == Indonesian {
		return ".", ","
	}
	return ",", "."
}

// Money renders an exact decimal amount of rupiah (a string such as
// "1250000", "1250000.5" or "-7500.00", never a float) as "Rp 1.250.000"
// in Indonesian and "Rp 1,250,000" in English. Cents show only when not
// zero, rounded to two places ("Rp 1.500,50"). Text that is not a number
// comes back as it was.
func (p *Printer) Money(amount string) string {
	d, err := decimal.NewFromString(strings.TrimSpace(amount))
	if err != nil {
		return amount
	}
	d = d.Round(2)
	neg := d.IsNegative()
	s := d.Abs().StringFixed(2)
	whole, frac, _ := strings.Cut(s, ".")
	th, dec := p.separators()
	out := "Rp " + group(whole, th)
	if frac != "00" {
		out += dec + frac
	}
	if neg {
		out = "-" + out
	}
	return out
}

// Amount is Money in a currency as the agent reports it (an ISO code,
// "IDR" for rupiah; "" before any sale): rupiah as Money, another
// currency with its code in front ("USD 12.50"). An empty amount is zero.
func (p *Printer) Amount(currency, amount string) string {
	if amount == "" {
		amount = "0"
	}
	s := p.Money(amount)
	if currency != "" && currency != "IDR" {
		s = strings.Replace(s, "Rp ", currency+" ", 1)
	}
	return s
}

// Count renders a whole number with the thousands separator of the
// language: "12.345" (id), "12,345" (en).
func (p *Printer) Count(n int64) string {
	th, _ := p.separators()
	s := strconv.FormatInt(n, 10)
	if neg := strings.HasPrefix(s, "-"); neg {
		return "-" + group(s[1:], th)
	}
	return group(s, th)
}

// Bytes renders a size: "512 B", "1,5 MB" (id), "1.5 MB" (en).
func (p *Printer) Bytes(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	units := []string{"KB", "MB", "GB", "TB"}
	// Tenths of the unit, in integers: exact enough and no float.
	i, div := 0, int64(1024)
	for n/div >= 1024 && i < len(units)-1 {
		div *= 1024
		i++
	}
	// Without overflow for any int64: the whole units, then the tenths
	// of the rest, rounded.
	whole, tenths := n/div, (n%div*10+div/2)/div
	if tenths == 10 {
		whole, tenths = whole+1, 0
	}
	_, dec := p.separators()
	return p.Count(whole) + dec + strconv.FormatInt(tenths, 10) + " " + units[i]
}

// group puts sep between every three digits of the digit string s.
func group(s, sep string) string {
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString(sep)
		}
		b.WriteRune(c)
	}
	return b.String()
}

var monthsID = [12]string{"Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des"}

// Date renders the day of t in t's own zone: "6 Des 2026" (id), "6 Dec
// 2026" (en). Give it a time in the outlet's zone.
func (p *Printer) Date(t time.Time) string {
	if p.lang == Indonesian {
		return strconv.Itoa(t.Day()) + " " + monthsID[t.Month()-1] + " " + strconv.Itoa(t.Year())
	}
	return t.Format("2 Jan 2006")
}

// DayMonth is Date without the year: "6 Des" (id), "6 Dec" (en), for
// chart axes.
func (p *Printer) DayMonth(t time.Time) string {
	if p.lang == Indonesian {
		return strconv.Itoa(t.Day()) + " " + monthsID[t.Month()-1]
	}
	return t.Format("2 Jan")
}

// Time renders the clock time of t in t's zone: "14.05" (id: Indonesian
// uses a dot), "14:05" (en).
func (p *Printer) Time(t time.Time) string {
	if p.lang == Indonesian {
		return t.Format("15.04")
	}
	return t.Format("15:04")
}

// DateTime renders t in t's own zone: "6 Des 2026 14.05" (id), "6 Dec 2026
// 14:05" (en).
func (p *Printer) DateTime(t time.Time) string {
	return p.Date(t) + " " + p.Time(t)
}

// Ago is how long ago d was, in the common catalogue's words: "just now"
// under a minute, "10 min ago" / "10 mnt lalu", "3 h ago", "2 days ago"
// (from 48 hours). A negative d is in the future: "in 5 min" / "5 mnt
// lagi". The tray and the command line show it; the dashboard words its
// longer times itself ("2 h 5 min").
func (p *Printer) Ago(d time.Duration) string {
	switch {
	case d < 0:
		return p.T("CommonIn", map[string]any{"Duration": p.roughDuration(-d)})
	case d < time.Minute:
		return p.T("CommonJustNow")
	}
	return p.T("CommonAgo", map[string]any{"Duration": p.roughDuration(d)})
}

// roughDuration is d, rounded down, in the largest unit that fits: "45
// s", "10 min", "3 h" (up to 48 hours), "2 days".
func (p *Printer) roughDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return p.T("CommonSeconds", map[string]any{"Count": int(d / time.Second)})
	case d < time.Hour:
		return p.T("CommonMinutes", map[string]any{"Count": int(d / time.Minute)})
	case d < 48*time.Hour:
		return p.T("CommonHours", map[string]any{"Count": int(d / time.Hour)})
	}
	return p.N("CommonDays", int(d/(24*time.Hour)))
}
