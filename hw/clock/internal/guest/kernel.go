package guest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Kernel returns the kernel the guests boot: $TIMENODE_QEMU_KERNEL, or
// Debian's linux-image-amd64 that fetchScript (qemutest/fetch-kernel.sh)
// downloads and extracts into cacheDir on first use. The second result is
// what the script printed.
func Kernel(cacheDir, fetchScript string) (string, []byte, error) {
	if k := os.Getenv("TIMENODE_QEMU_KERNEL"); k != "" {
		return k, nil, nil
	}
	kernel := filepath.Join(cacheDir, "vmlinuz")
	if _, err := os.Stat(kernel); err == nil {
		return kernel, nil, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", nil, err
	}
	out, err := exec.Command(fetchScript, cacheDir).CombinedOutput()
	if err != nil {
		return "", out, fmt.Errorf("%s: %w", fetchScript, err)
	}
	return kernel, out, nil
}

// QEMU returns the qemu-system-x86_64 command that boots kernel and initrd
// under TCG with no network, display or monitor and stops instead of
// rebooting: the console goes to consoleLog, the second serial port (the
// guest's results) to resultsLog. extra adds machine options (CPUs,
// memory, clock).
func QEMU(ctx context.Context, qemu, kernel, initrd, cmdline, consoleLog, resultsLog string, extra ...string) *exec.Cmd {
	args := append([]string{"-accel", "tcg", "-machine", "q35", "-cpu", "max"}, extra...)
	args = append(args,
		"-kernel", kernel, "-initrd", initrd, "-append", cmdline,
		"-nic", "none", "-display", "none", "-no-reboot",
		"-serial", "file:"+consoleLog, "-serial", "file:"+resultsLog,
		"-monitor", "none")
	return exec.CommandContext(ctx, qemu, args...)
}
