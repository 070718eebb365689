package localapi

import "time"

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
	// what still needs setting up, in the agent's language (Language).
	Problems []string `json:"problems"`
	// ProblemDetails are the same problems for machines and for readers
	// in another language: a stable code and its parameters (issue 15).
	ProblemDetails []ProblemDetail `json:"problem_details"`
	// Language is agent.language and what it resolved to on the agent's
	// PC; a client with "auto" follows its own reader instead.
	Language LanguageStatus `json:"language"`
	Config   ConfigStatus   `json:"config"`
	Moka     MokaStatus     `json:"moka"`
	Queue    QueueStatus    `json:"queue"`
	Upstream UpstreamStatus `json:"upstream"`
	// Sinks are the delivery targets the agent knows (SPEC §6, §8), in a
	// fixed order, enabled or not. Upstream repeats the first ("upstream")
	// for clients from before sinks.
	Sinks []SinkStatus `json:"sinks"`
	// Jurnal is the Jurnal sink's list of outlets (SPEC §6.3).
	Jurnal   JurnalStatus   `json:"jurnal"`
	Checkout CheckoutStatus `json:"checkout"`
	Store    StoreStatus    `json:"store"`
}

// ProblemDetail is one problem of Status.Problems, as data.
type ProblemDetail struct {
	// Code is the message id of internal/i18n's health catalogue
	// ("HealthDiskFull"); render it with i18n.Printer.Msg(Code, Params).
	Code string `json:"code"`
	// Severity is "blocking", "retrying" or "note".
	Severity string `json:"severity"`
	// Params are the message's data: strings, and "Count" a number.
	Params map[string]any `json:"params,omitempty"`
	// Text is the sentence in the agent's language.
	Text string `json:"text"`
}

// LanguageStatus is the agent.language setting.
type LanguageStatus struct {
	// Setting is agent.language: "auto", "id" or "en".
	Setting string `json:"setting"`
	// Resolved is the language the agent itself writes in: "id" or "en"
	// ("auto" follows the locale of the agent's PC).
	Resolved string `json:"resolved"`
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
	Enabled bool `json:"enabled"`
	// API is the dialect in use: "oauth" (the Moka Open API, what real
	// accounts have) or "apikey" (the integration guide's).
	API        string `json:"api"`
	Configured bool   `json:"configured"`
	// Setup says what is still missing before Moka can be connected (the
	// client id and secret of the oauth dialect, say); empty when nothing.
	Setup   string         `json:"setup"`
	Outlets []OutletStatus `json:"outlets"`
	// NeedsAuthorization is true when the oauth dialect has no valid grant:
	// someone must run "Connect Moka" (tray, dashboard, `moka connect`).
	NeedsAuthorization bool          `json:"needs_authorization"`
	LastPollAt         *time.Time    `json:"last_poll_at"`
	NextPollAt         *time.Time    `json:"next_poll_at"`
	Import             *ImportStatus `json:"import"`
	// OAuth is the grant of the oauth dialect; null with api = "apikey".
	// (Added with the oauth dialect, issue 7.)
	OAuth *MokaOAuthStatus `json:"oauth"`
	// Timezone is moka.timezone, the outlets' zone, in which a person
	// reads every time (issue 15).
	Timezone string `json:"timezone"`
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
	// Sink is the sink the import is for; empty for every sink.
	Sink string `json:"sink"`
	// New and Changed count the Records that were not buffered before,
	// and those buffered before in another version (the rest were
	// unchanged); Outlets counts the outlets imported so far; FinishedAt
	// is when the import ended (null while it runs). (Issue 15.)
	New        int64      `json:"new"`
	Changed    int64      `json:"changed"`
	Outlets    int        `json:"outlets"`
	FinishedAt *time.Time `json:"finished_at"`
}

// QueueStatus describes the durable buffer: the records at least one sink
// still needs (each sink's own share is in Status.Sinks).
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

// Sink health values (SinkStatus.Health).
const (
	SinkHealthOK      = ""
	SinkHealthOffline = "offline"
	SinkHealthError   = "error"
)

// SinkStatus describes one delivery target and its view of the buffer.
type SinkStatus struct {
	// Name is the sink's name on the command line (`--sink NAME`) and in
	// the metrics: "upstream", "nats", "jurnal".
	Name string `json:"name"`
	// Title is how a person knows it: "PWBI cloud".
	Title string `json:"title"`
	// Enabled: the configuration enables the sink; the buffer keeps every
	// record until each enabled sink has it.
	Enabled bool `json:"enabled"`
	// Configured: the sink has somewhere to deliver to (false: records
	// stay buffered for it).
	Configured bool `json:"configured"`
	Online     bool `json:"online"`
	// Health is "" (fine), "offline" (retries will fix it) or "error" (a
	// person must act); Problem says why in a sentence.
	Health  string `json:"health"`
	Problem string `json:"problem"`
	// ProblemCode and ProblemParams are Problem as the sink worded it: a
	// message id of the health catalogue and its data, so that a reader
	// shows it in its own language; absent for a sentence without one.
	ProblemCode   string         `json:"problem_code,omitempty"`
	ProblemParams map[string]any `json:"problem_params,omitempty"`
	Sending       bool           `json:"sending"`
	LastSuccessAt *time.Time     `json:"last_success_at"`
	LastError     string         `json:"last_error"`
	NextRetryAt   *time.Time     `json:"next_retry_at"`
	// Pending, PendingBytes and OldestPendingAt are the records the sink
	// still has to take.
	Pending         int64      `json:"pending"`
	PendingBytes    int64      `json:"pending_bytes"`
	OldestPendingAt *time.Time `json:"oldest_pending_at"`
	// DeadLetters are the records the sink rejected, set aside.
	DeadLetters int64 `json:"dead_letters"`
	// Delivered counts the records delivered since the agent started.
	Delivered uint64 `json:"delivered"`
}

// CheckoutStatus describes the Mokka checkout gateway.
type CheckoutStatus struct {
	Enabled    bool   `json:"enabled"`
	Listen     string `json:"listen"`
	OpenOrders int    `json:"open_orders"`
	// Scheme is what tablets speak to checkout.listen: "https" or "http";
	// "" while it is not served.
	Scheme string `json:"scheme,omitempty"`
	// TLSFingerprint is the lowercase hex SHA-256 of the gateway's TLS
	// certificate, which tablets pin (the pairing code's sha256), and
	// TLSKeyPin the SHA-256 of its public key (spki), which survives
	// renewals; both "" without TLS. TLSNotAfter is when it ends (it is
	// renewed before).
	TLSFingerprint string     `json:"tls_fingerprint,omitempty"`
	TLSKeyPin      string     `json:"tls_spki_sha256,omitempty"`
	TLSNotAfter    *time.Time `json:"tls_not_after,omitempty"`
	// Warning is set when tablets' tokens cross the network in plain text
	// (checkout.tls = false on a LAN address).
	Warning string `json:"warning,omitempty"`
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

// JurnalStatus is the Jurnal sink's part of the status (SPEC §6.3): per
// outlet, as the add-on's "Daftar Pengaturan / Sinkronisasi Terakhir"
// list, when Jurnal last got the outlet's sales, how many documents were
// posted, how many sales wait, and the last error. The delivery figures
// (pending, dead letters, health) are in Status.Sinks under "jurnal".
type JurnalStatus struct {
	Enabled bool `json:"enabled"`
	// Mode is "invoice" or "daily_summary".
	Mode string `json:"mode"`
	// Setup says what is missing before Jurnal can be posted to; empty
	// when nothing.
	Setup string `json:"setup"`
	// QuotaExhausted: Jurnal answered that the API limit is used up;
	// posting waits until QuotaUntil.
	QuotaExhausted bool       `json:"quota_exhausted"`
	QuotaUntil     *time.Time `json:"quota_until"`
	QuotaMessage   string     `json:"quota_message"`
	// ClockProblem is a sentence for a person when the PC's clock is more
	// than 5 minutes off Mekari's (the agent then signs with Mekari's time).
	ClockProblem string `json:"clock_problem"`
	// ClockProblemCode and ClockProblemParams are ClockProblem as a
	// message of the health catalogue, for a reader in another language;
	// absent with it.
	ClockProblemCode   string         `json:"clock_problem_code,omitempty"`
	ClockProblemParams map[string]any `json:"clock_problem_params,omitempty"`
	// Calls counts the requests sent to Jurnal since the agent started.
	Calls   int64                `json:"calls"`
	Outlets []JurnalOutletStatus `json:"outlets"`
	// ClosedDaysWaiting counts the closed business days (daily_summary)
	// not posted yet; Days says, oldest first, why those tried were not.
	ClosedDaysWaiting int              `json:"closed_days_waiting"`
	Days              []JurnalDayIssue `json:"days"`
}

// JurnalDayIssue is a closed day (daily_summary) whose posting failed.
type JurnalDayIssue struct {
	OutletID string `json:"outlet_id"`
	Date     string `json:"date"` // YYYY-MM-DD, the outlet's business day
	// Refused: Jurnal refused the day's documents (only a change in Jurnal
	// or the config gets it posted); otherwise Jurnal could not be
	// reached or was over its limit.
	Refused bool      `json:"refused"`
	Error   string    `json:"error"`
	Since   time.Time `json:"since"` // first failure
}

// JurnalOutletStatus is one outlet's line of the Jurnal list.
type JurnalOutletStatus struct {
	OutletID     string     `json:"outlet_id"`
	Tag          string     `json:"tag"`
	LastSyncedAt *time.Time `json:"last_synced_at"`
	Posted       int        `json:"posted"`
	Waiting      int        `json:"waiting"`
	LastError    string     `json:"last_error"`
	LastErrorAt  *time.Time `json:"last_error_at"`
}
