package service

import (
	"errors"

	"github.com/kardianos/service"
	"golang.org/x/sys/windows"
)

// delayedStartUnsupported reports whether an install failed because the
// SCM does not know the delayed auto-start setting: Wine 8 answers
// ERROR_INVALID_LEVEL, and x/sys's CreateService then deletes the service
// again. Windows has known the setting since Vista.
func delayedStartUnsupported(err error) bool {
	return errors.Is(err, windows.ERROR_INVALID_LEVEL)
}

// withStatus replaces the Status of a kardianos Windows service: kardianos
// opens the service asking for start and stop rights as well, which a user
// without elevation lacks, so `pwbi-agent status` failed with "Access is
// denied" outside an Administrator prompt. Querying needs only
// SERVICE_QUERY_STATUS, which every authenticated user has.
func withStatus(s service.Service) service.Service { return queryOnly{s} }

type queryOnly struct{ service.Service }

func (queryOnly) Status() (service.Status, error) {
	m, err := windows.OpenSCManager(nil, nil, windows.SC_MANAGER_CONNECT)
	if err != nil {
		return service.StatusUnknown, err
	}
	defer windows.CloseServiceHandle(m)
	name, err := windows.UTF16PtrFromString(Name)
	if err != nil {
		return service.StatusUnknown, err
	}
	h, err := windows.OpenService(m, name, windows.SERVICE_QUERY_STATUS)
	if errors.Is(err, windows.ERROR_SERVICE_DOES_NOT_EXIST) {
		return service.StatusUnknown, service.ErrNotInstalled
	}
	if err != nil {
		return service.StatusUnknown, err
	}
	defer windows.CloseServiceHandle(h)
	var st windows.SERVICE_STATUS
	if err := windows.QueryServiceStatus(h, &st); err != nil {
		return service.StatusUnknown, err
	}
	switch st.CurrentState {
	case windows.SERVICE_RUNNING, windows.SERVICE_START_PENDING:
		return service.StatusRunning, nil
	case windows.SERVICE_STOPPED, windows.SERVICE_STOP_PENDING, windows.SERVICE_PAUSED,
		windows.SERVICE_PAUSE_PENDING, windows.SERVICE_CONTINUE_PENDING:
		return service.StatusStopped, nil
	}
	return service.StatusUnknown, nil
}
