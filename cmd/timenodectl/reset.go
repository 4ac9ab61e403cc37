package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/aunsorm/timenode/image/slots"
)

// resetMarker on the ESP asks the next boot to wipe the state partition.
// The ESP, not /var: the request must survive the wipe it asks for and be
// readable before /var is mounted.
const resetMarker = "timenode/factory-reset"

// The appliance's state partition and the pristine /var the image ships.
const (
	defaultStateDevice = "/dev/disk/by-partlabel/tn-state"
	defaultFactoryVar  = "/usr/lib/timenode/factory/var"
)

func init() {
	registerLeaf("factory-reset", leaf{args: noArgs,
		summary: "wipe /var (keys, provisioning, state) at the next boot and return the node to first boot",
		help: `Asks for the reset (a marker on the ESP) and reboots. Early in the next
boot, before /var is mounted, timenode-factory-reset.service makes a new
file system on the state partition from the pristine /var the image
ships, then removes the marker: the signing and TLS keys, the site
material, the administrator's keys and the update records are gone, and
the node makes new keys and CSRs as on its first boot. The installed
software (both root slots) stays. Needs --yes.`,
		flags: factoryReset})
}

func factoryReset(fs *flag.FlagSet) runFunc {
	yes := fs.Bool("yes", false, "confirm: every key and all provisioning on this node will be destroyed")
	apply := fs.Bool("apply", false, "perform a requested reset now (timenode-factory-reset.service, before /var is mounted)")
	noReboot := fs.Bool("no-reboot", false, "only ask for the reset; the next boot performs it")
	esp := fs.String("esp", defaultESP, "the EFI system partition's mount point")
	device := fs.String("device", defaultStateDevice, "the state partition")
	factory := fs.String("factory-var", defaultFactoryVar, "the pristine /var the new file system is made from")
	return func(_ []string, stdout, stderr io.Writer) int {
		const prog = "timenodectl factory-reset"
		e := espOf(*esp)
		ctx := context.Background()
		if *apply {
			done, err := applyReset(ctx, e, *device, *factory, stdout)
			if err != nil {
				return fail(stderr, prog, err)
			}
			if !done {
				fmt.Fprintln(stdout, "no factory reset requested")
			}
			return 0
		}
		if !*yes {
			return usageErr(stderr, prog, "this destroys the node's keys and provisioning: run it with --yes")
		}
		if err := requestReset(e); err != nil {
			return fail(stderr, prog, err)
		}
		fmt.Fprintln(stdout, "factory reset requested: the next boot wipes /var")
		if *noReboot {
			return 0
		}
		if err := runner(ctx, stdout, stderr, "systemctl", "reboot"); err != nil {
			return fail(stderr, prog, fmt.Errorf("reboot: %w (the reset happens at the next boot)", err))
		}
		return 0
	}
}

// requestReset writes the marker on the ESP.
func requestReset(e slots.ESP) error {
	done, err := e.Writable()
	if err != nil {
		return err
	}
	path := filepath.Join(e.Dir, resetMarker)
	werr := os.MkdirAll(filepath.Dir(path), 0o755)
	if werr == nil {
		werr = writeFileSync(path, []byte("requested by timenodectl factory-reset\n"))
	}
	if err := done(); werr == nil {
		werr = err
	}
	return werr
}

// applyReset wipes the state partition if a reset was requested: a new
// ext4 file system labelled tn-state, populated from the factory /var;
// the marker goes only after mkfs succeeded, so a reset cut short by
// power is done again at the next boot.
func applyReset(ctx context.Context, e slots.ESP, device, factory string, log io.Writer) (bool, error) {
	path := filepath.Join(e.Dir, resetMarker)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	if fi, err := os.Stat(factory); err != nil || !fi.IsDir() {
		return false, fmt.Errorf("no factory /var at %s: the state partition is left as it is", factory)
	}
	fmt.Fprintf(log, "factory reset: making a new state file system on %s from %s\n", device, factory)
	if err := runner(ctx, log, log, "mkfs.ext4", "-q", "-F", "-L", "tn-state", "-m", "1", "-d", factory, device); err != nil {
		return false, fmt.Errorf("mkfs.ext4 %s: %w (the request stays; the next boot tries again)", device, err)
	}
	done, err := e.Writable()
	if err != nil {
		return false, err
	}
	// The rollbacks the gate recorded went with /var; the firmware's
	// marks on the entries stay. List them so the gate does not report
	// them again as news.
	if err := writeKnownRollbacks(e); err != nil {
		fmt.Fprintf(log, "factory reset: the rollbacks already seen could not be listed (%v): the next boot reports them again\n", err)
	}
	rerr := os.Remove(path)
	if err := done(); rerr == nil {
		rerr = err
	}
	if rerr != nil {
		return false, fmt.Errorf("state wiped, but the request could not be removed: %w", rerr)
	}
	fmt.Fprintln(log, "factory reset: done; the node starts as on its first boot")
	return true, nil
}

// writeKnownRollbacks writes rollbacksKnownFile: every entry the firmware
// has marked bad after its tries, as rollbackKey names it, and every one
// the initramfs refused, as refusalKey names it.
func writeKnownRollbacks(e slots.ESP) error {
	es, err := e.Entries()
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, ent := range es {
		if ent.Bad() && ent.Done > 0 {
			b.WriteString(rollbackKey(ent) + "\n")
		}
		if why := refusal(e, ent.Slot); ent.Bad() && why != "" {
			b.WriteString(refusalKey(ent, why) + "\n")
		}
	}
	return writeFileSync(filepath.Join(e.Dir, rollbacksKnownFile), []byte(b.String()))
}
