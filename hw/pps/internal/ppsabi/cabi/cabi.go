//go:build cgo && linux

package cabi

/*
#include <stddef.h>

#if __has_include(<linux/pps.h>)
#include <linux/pps.h>
#define HAVE_PPS_H 1

static unsigned long abi_getparams(void) { return PPS_GETPARAMS; }
static unsigned long abi_setparams(void) { return PPS_SETPARAMS; }
static unsigned long abi_getcap(void) { return PPS_GETCAP; }
static unsigned long abi_fetch(void) { return PPS_FETCH; }

static int abi_api_version(void) { return PPS_API_VERS_1; }
static int abi_captureassert(void) { return PPS_CAPTUREASSERT; }
static int abi_captureclear(void) { return PPS_CAPTURECLEAR; }
static int abi_offsetassert(void) { return PPS_OFFSETASSERT; }
static int abi_canwait(void) { return PPS_CANWAIT; }
static int abi_tsfmt_tspec(void) { return PPS_TSFMT_TSPEC; }
static int abi_time_invalid(void) { return PPS_TIME_INVALID; }

static size_t abi_size(int i) {
	const size_t sizes[] = {
	sizeof(struct pps_ktime),
	sizeof(struct pps_kinfo),
	sizeof(struct pps_kparams),
	sizeof(struct pps_fdata),
	offsetof(struct pps_ktime, sec),
	offsetof(struct pps_ktime, nsec),
	offsetof(struct pps_ktime, flags),
	offsetof(struct pps_kinfo, assert_sequence),
	offsetof(struct pps_kinfo, assert_tu),
	offsetof(struct pps_kinfo, clear_tu),
	offsetof(struct pps_kinfo, current_mode),
	offsetof(struct pps_kparams, api_version),
	offsetof(struct pps_kparams, mode),
	offsetof(struct pps_kparams, assert_off_tu),
	offsetof(struct pps_fdata, info),
	offsetof(struct pps_fdata, timeout),
	};
	return sizes[i];
}
#else
#define HAVE_PPS_H 0
static unsigned long abi_getparams(void) { return 0; }
static unsigned long abi_setparams(void) { return 0; }
static unsigned long abi_getcap(void) { return 0; }
static unsigned long abi_fetch(void) { return 0; }
static int abi_api_version(void) { return 0; }
static int abi_captureassert(void) { return 0; }
static int abi_captureclear(void) { return 0; }
static int abi_offsetassert(void) { return 0; }
static int abi_canwait(void) { return 0; }
static int abi_tsfmt_tspec(void) { return 0; }
static int abi_time_invalid(void) { return 0; }
static size_t abi_size(int i) { return 0; }
#endif

static int have_pps_h(void) { return HAVE_PPS_H; }
*/
import "C"

import "github.com/aunsorm/timenode/hw/pps/internal/ppsabi"

// HaveHeader reports whether <linux/pps.h> was found when this package was
// compiled; without it (Debian package linux-libc-dev missing) the other
// functions return zeros.
func HaveHeader() bool { return C.have_pps_h() != 0 }

// KernelLayout is the layout the C compiler computes from the installed
// <linux/pps.h> for the architecture being built.
func KernelLayout() ppsabi.Layout {
	s := func(i int) uintptr { return uintptr(C.abi_size(C.int(i))) }
	return ppsabi.Layout{
		GetParams: uint64(C.abi_getparams()),
		SetParams: uint64(C.abi_setparams()),
		GetCap:    uint64(C.abi_getcap()),
		Fetch:     uint64(C.abi_fetch()),

		SizeofKTime:   s(0),
		SizeofKInfo:   s(1),
		SizeofKParams: s(2),
		SizeofFData:   s(3),

		KTimeSec:   s(4),
		KTimeNsec:  s(5),
		KTimeFlags: s(6),

		KInfoAssertSequence: s(7),
		KInfoAssertTU:       s(8),
		KInfoClearTU:        s(9),
		KInfoCurMode:        s(10),

		KParamsAPIVersion:  s(11),
		KParamsMode:        s(12),
		KParamsAssertOffTU: s(13),

		FDataInfo:    s(14),
		FDataTimeout: s(15),
	}
}

// KernelConstants returns the mode bits and flags of <linux/pps.h> that this
// ppsabi redeclares in Go, named by their C macro.
func KernelConstants() map[string]int {
	return map[string]int{
		"PPS_API_VERS_1":    int(C.abi_api_version()),
		"PPS_CAPTUREASSERT": int(C.abi_captureassert()),
		"PPS_CAPTURECLEAR":  int(C.abi_captureclear()),
		"PPS_OFFSETASSERT":  int(C.abi_offsetassert()),
		"PPS_CANWAIT":       int(C.abi_canwait()),
		"PPS_TSFMT_TSPEC":   int(C.abi_tsfmt_tspec()),
		"PPS_TIME_INVALID":  int(C.abi_time_invalid()),
	}
}
