package ppsabi

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Layout is the part of the PPS ABI whose values depend on the architecture:
// ioctl request numbers, struct sizes and the offsets of the fields package
// pps reads or writes.
type Layout struct {
	GetParams, SetParams, GetCap, Fetch uint64

	SizeofKTime, SizeofKInfo, SizeofKParams, SizeofFData uintptr

	KTimeSec, KTimeNsec, KTimeFlags                                uintptr
	KInfoAssertSequence, KInfoAssertTU, KInfoClearTU, KInfoCurMode uintptr
	KParamsAPIVersion, KParamsMode, KParamsAssertOffTU             uintptr
	FDataInfo, FDataTimeout                                        uintptr
}

// GoLayout is the layout as compiled into package pps: the ioctl numbers and
// types of golang.org/x/sys/unix for the target architecture.
func GoLayout() Layout {
	var (
		tm unix.PPSKTime
		ki unix.PPSKInfo
		kp unix.PPSKParams
		fd unix.PPSFData
	)
	return Layout{
		GetParams: uint64(unix.PPS_GETPARAMS),
		SetParams: uint64(unix.PPS_SETPARAMS),
		GetCap:    uint64(unix.PPS_GETCAP),
		Fetch:     uint64(unix.PPS_FETCH),

		SizeofKTime:   unsafe.Sizeof(tm),
		SizeofKInfo:   unsafe.Sizeof(ki),
		SizeofKParams: unsafe.Sizeof(kp),
		SizeofFData:   unsafe.Sizeof(fd),

		KTimeSec:   unsafe.Offsetof(tm.Sec),
		KTimeNsec:  unsafe.Offsetof(tm.Nsec),
		KTimeFlags: unsafe.Offsetof(tm.Flags),

		KInfoAssertSequence: unsafe.Offsetof(ki.Assert_sequence),
		KInfoAssertTU:       unsafe.Offsetof(ki.Assert_tu),
		KInfoClearTU:        unsafe.Offsetof(ki.Clear_tu),
		KInfoCurMode:        unsafe.Offsetof(ki.Current_mode),

		KParamsAPIVersion:  unsafe.Offsetof(kp.Api_version),
		KParamsMode:        unsafe.Offsetof(kp.Mode),
		KParamsAssertOffTU: unsafe.Offsetof(kp.Assert_off_tu),

		FDataInfo:    unsafe.Offsetof(fd.Info),
		FDataTimeout: unsafe.Offsetof(fd.Timeout),
	}
}

// Fields lists the layout as named values, in a fixed order, so that two
// layouts can be compared and a difference reported by name.
func (l Layout) Fields() []Field {
	return []Field{
		{"PPS_GETPARAMS", l.GetParams},
		{"PPS_SETPARAMS", l.SetParams},
		{"PPS_GETCAP", l.GetCap},
		{"PPS_FETCH", l.Fetch},
		{"sizeof(struct pps_ktime)", uint64(l.SizeofKTime)},
		{"sizeof(struct pps_kinfo)", uint64(l.SizeofKInfo)},
		{"sizeof(struct pps_kparams)", uint64(l.SizeofKParams)},
		{"sizeof(struct pps_fdata)", uint64(l.SizeofFData)},
		{"offsetof(pps_ktime, sec)", uint64(l.KTimeSec)},
		{"offsetof(pps_ktime, nsec)", uint64(l.KTimeNsec)},
		{"offsetof(pps_ktime, flags)", uint64(l.KTimeFlags)},
		{"offsetof(pps_kinfo, assert_sequence)", uint64(l.KInfoAssertSequence)},
		{"offsetof(pps_kinfo, assert_tu)", uint64(l.KInfoAssertTU)},
		{"offsetof(pps_kinfo, clear_tu)", uint64(l.KInfoClearTU)},
		{"offsetof(pps_kinfo, current_mode)", uint64(l.KInfoCurMode)},
		{"offsetof(pps_kparams, api_version)", uint64(l.KParamsAPIVersion)},
		{"offsetof(pps_kparams, mode)", uint64(l.KParamsMode)},
		{"offsetof(pps_kparams, assert_off_tu)", uint64(l.KParamsAssertOffTU)},
		{"offsetof(pps_fdata, info)", uint64(l.FDataInfo)},
		{"offsetof(pps_fdata, timeout)", uint64(l.FDataTimeout)},
	}
}

// Field is one named value of a Layout.
type Field struct {
	Name  string
	Value uint64
}
