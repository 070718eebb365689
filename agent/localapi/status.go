package localapi

import (
	"fmt"
	"time"
)

// Agent states shown by the tray icon, the dashboard and `pwbi-agent status`.
const (
	StateOK      = "ok"
	StateSyncing = "syncing"
	StateOffline = "offline"
	StateError   = "error"
	StatePaused  = "paused"
)

// Status is the body of GET /v1/status (SPEC §8). It never carries a secret.
// Times the agent has not seen yet are null.
type Status struct {
	State     string     `json:"state"`
	Version   string     `json:"version"`
	AgentID   string     `json:"agent_id"`
	StartedAt *time.Time `json:"started_at"`
	// Problems are short sentences for a person: why the state is not ok, or
	// what still needs setting up.
	Problems []string       `json:"problems"`
	Config   ConfigStatus   `json:"config"`
	Moka     MokaStatus     `json:"moka"`
	Queue    QueueStatus    `json:"queue"`
	Upstream UpstreamStatus `json:"upstream"`
	Checkout CheckoutStatus `json:"checkout"`
	Store    StoreStatus    `json:"store"`
}

// ConfigStatus describes the configuration in force.
type ConfigStatus struct {
	Path       string     `json:"path"`
	Generation uint64     `json:"generation"`
	LoadedAt   *time.Time `json:"loaded_at"`
	// Error is the reason the last load of the file failed; empty when it
	// succeeded. A failed load keeps the previous configuration running.
	Error           string   `json:"error"`
	RestartRequired []string `json:"restart_required"`
}

// MokaStatus describes the Moka POS connector.
type MokaStatus struct {
	Enabled    bool           `json:"enabled"`
	Configured bool           `json:"configured"`
	Outlets    []OutletStatus `json:"outlets"`
	// NeedsAuthorization is true when the oauth dialect has no valid grant:
	// someone must run "Connect Moka" (tray, dashboard, `moka connect`).
	NeedsAuthorization bool          `json:"needs_authorization"`
	LastPollAt         *time.Time    `json:"last_poll_at"`
	NextPollAt         *time.Time    `json:"next_poll_at"`
	Import             *ImportStatus `json:"import"`
	// OAuth is the grant of the oauth dialect; null with api = "apikey".
	// (Added with the oauth dialect, issue 7.)
	OAuth *MokaOAuthStatus `json:"oauth"`
}

// MokaOAuthStatus describes the Moka Open API authorization. It never
// carries a token.
type MokaOAuthStatus struct {
	// Connected: the agent holds a grant Moka has not refused.
	Connected bool `json:"connected"`
	// AuthorizedAt is when the last authorization completed (the CLI's
	// `moka connect` waits for it to change).
	AuthorizedAt *time.Time `json:"authorized_at"`
	// AccessTokenExpiresAt is when the current access token expires; it
	// is refreshed a few minutes before.
	AccessTokenExpiresAt *time.Time `json:"access_token_expires_at"`
	LastRefreshAt        *time.Time `json:"last_refresh_at"`
	BusinessID           string     `json:"business_id"`
	// PendingAuthorizations counts authorizations started and not yet
	// completed.
	PendingAuthorizations int `json:"pending_authorizations"`
	// LastError is the last failed token request or authorization, and
	// when; empty after a success.
	LastError   string     `json:"last_error"`
	LastErrorAt *time.Time `json:"last_error_at"`
}

// OutletStatus is the sync state of one outlet.
type OutletStatus struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	LastSyncAt *time.Time `json:"last_sync_at"`
	LastError  string     `json:"last_error"`
	// Failures counts the polls in a row in which the outlet failed (since
	// the agent started); 0 when its last poll went well.
	Failures     int   `json:"failures"`
	Transactions int64 `json:"transactions"`
	Products     int64 `json:"products"`
}

// ImportStatus is the progress of a historical import.
type ImportStatus struct {
	Running   bool       `json:"running"`
	Since     string     `json:"since"`
	OutletID  string     `json:"outlet_id"`
	DaysDone  int        `json:"days_done"`
	DaysTotal int        `json:"days_total"`
	Records   int64      `json:"records"`
	StartedAt *time.Time `json:"started_at"`
	Error     string     `json:"error"`
}

// QueueStatus describes the durable buffer.
type QueueStatus struct {
	Pending         int64      `json:"pending"`
	PendingBytes    int64      `json:"pending_bytes"`
	DeadLetter      int64      `json:"dead_letter"`
	OldestPendingAt *time.Time `json:"oldest_pending_at"`
	// Full is true while the buffer is at upstream.max_pending_mb and
	// polling is paused.
	Full bool `json:"full"`
}

// UpstreamStatus describes the connection to the PWBI cloud.
type UpstreamStatus struct {
	Configured    bool       `json:"configured"`
	Online        bool       `json:"online"`
	LastSuccessAt *time.Time `json:"last_success_at"`
	LastError     string     `json:"last_error"`
	// Problem says in a sentence what is wrong while delivery does not work
	// (a refused token, a Wi-Fi login page answering instead of the cloud);
	// empty when it works.
	Problem     string     `json:"problem"`
	NextRetryAt *time.Time `json:"next_retry_at"`
	Delivered   uint64     `json:"delivered"`
}

// CheckoutStatus describes the Mokka checkout gateway.
type CheckoutStatus struct {
	Enabled    bool   `json:"enabled"`
	Listen     string `json:"listen"`
	OpenOrders int    `json:"open_orders"`
}

// StoreStatus describes the local database.
type StoreStatus struct {
	FileSize int64 `json:"file_size"`
	// Quarantine is set when the database was found corrupt at start, moved
	// aside and replaced by a fresh one.
	Quarantine *QuarantineStatus `json:"quarantine"`
}

// QuarantineStatus records a corrupt database that was moved aside.
type QuarantineStatus struct {
	CorruptPath string    `json:"corrupt_path"`
	Reason      string    `json:"reason"`
	At          time.Time `json:"at"`
}

// TimePtr returns nil for the zero time, so it renders as null.
func TimePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Ago renders a duration as "just now", "5 min ago", "3 h ago", "2 days ago".
func Ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d/time.Hour))
	default:
		return fmt.Sprintf("%d days ago", int(d/(24*time.Hour)))
	}
}
