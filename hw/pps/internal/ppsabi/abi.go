package ppsabi

// Mode bits and flags of <linux/pps.h> used by package pps. They are the same
// on every Linux architecture.
const (
	APIVersion    = 1      // PPS_API_VERS_1
	CaptureAssert = 0x01   // PPS_CAPTUREASSERT
	CaptureClear  = 0x02   // PPS_CAPTURECLEAR
	OffsetAssert  = 0x10   // PPS_OFFSETASSERT
	CanWait       = 0x100  // PPS_CANWAIT
	TSFmtTSpec    = 0x1000 // PPS_TSFMT_TSPEC
	TimeInvalid   = 0x01   // PPS_TIME_INVALID, flag of struct pps_ktime
)

// Generic ioctl encoding of asm-generic/ioctl.h, used by amd64, arm64, arm,
// 386, riscv64, loong64 and s390x.
const (
	iocWrite = 1
	iocRead  = 2

	iocNRShift   = 0
	iocTypeShift = 8
	iocSizeShift = 16
	iocDirShift  = 30
)

// GenericIoctl encodes an ioctl request number the way the kernel's generic
// _IOC macro does.
func GenericIoctl(dir, typ, nr, size uint64) uint64 {
	return dir<<iocDirShift | size<<iocSizeShift | typ<<iocTypeShift | nr<<iocNRShift
}

// GenericRequests returns the four PPS ioctl numbers as the generic encoding
// gives them for pointers of ptrSize bytes, in the order GetParams, SetParams,
// GetCap, Fetch.
func GenericRequests(ptrSize uint64) [4]uint64 {
	return [4]uint64{
		GenericIoctl(iocRead, 'p', 0xa1, ptrSize),
		GenericIoctl(iocWrite, 'p', 0xa2, ptrSize),
		GenericIoctl(iocRead, 'p', 0xa3, ptrSize),
		GenericIoctl(iocRead|iocWrite, 'p', 0xa4, ptrSize),
	}
}
