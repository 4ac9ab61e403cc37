package guest

import (
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
