package main

import (
	"fmt"
	"github.com/aunsorm/timenode/hw/sim"
	"net/http"
	"strconv"
	"time"
)

// attackRoutes adds the GNSS attacks of docs/INTEGRITY.md to the
// simulation's controls, each a POST on the plain listener:
//
//	/sim/push?by=1ms           GNSS time steps (negative: a pull)
//	/sim/drag?ns_per_s=1000    GNSS time drifts from now on (0 stops it)
//	/sim/position?north_m=2000 fixes move (east_m, up_m too; all 0 restores)
//	/sim/cn0?uniform=true      a simulator's equal strong signals
//	/sim/rollover?on=true      dates 1024 weeks early
//	/sim/clear                 all of the above undone
//
// GET /sim/attack reports what is injected.
func (w *simWorld) attackRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /sim/push", func(rw http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("by"))
		if err != nil {
			http.Error(rw, "want ?by=DURATION (e.g. 1ms, -50us)", http.StatusBadRequest)
			return
		}
		w.pps.Shift(d)
		fmt.Fprintf(rw, "ok push %v\n", d)
	})
	mux.HandleFunc("POST /sim/drag", func(rw http.ResponseWriter, r *http.Request) {
		rate, err := strconv.ParseFloat(r.URL.Query().Get("ns_per_s"), 64)
		if err != nil {
			http.Error(rw, "want ?ns_per_s=NUMBER", http.StatusBadRequest)
			return
		}
		w.pps.Drag(rate)
		fmt.Fprintf(rw, "ok drag %g ns/s\n", rate)
	})
	mux.HandleFunc("POST /sim/position", func(rw http.ResponseWriter, r *http.Request) {
		var v [3]float64
		for i, name := range []string{"east_m", "north_m", "up_m"} {
			s := r.URL.Query().Get(name)
			if s == "" {
				continue
			}
			x, err := strconv.ParseFloat(s, 64)
			if err != nil {
				http.Error(rw, "want ?north_m=, east_m=, up_m= in metres", http.StatusBadRequest)
				return
			}
			v[i] = x
		}
		w.rx.MovePosition(v[0], v[1], v[2])
		fmt.Fprintf(rw, "ok position moved east %g m, north %g m, up %g m\n", v[0], v[1], v[2])
	})
	fault := func(param string, set func(on bool)) http.HandlerFunc {
		return func(rw http.ResponseWriter, r *http.Request) {
			on, err := strconv.ParseBool(r.URL.Query().Get(param))
			if err != nil {
				http.Error(rw, fmt.Sprintf("want ?%s=true|false", param), http.StatusBadRequest)
				return
			}
			set(on)
			fmt.Fprintf(rw, "ok %s=%t\n", param, on)
		}
	}
	mux.HandleFunc("POST /sim/cn0", fault("uniform", func(on bool) {
		f := w.rx.Faults()
		f.UniformCN0 = on
		w.rx.SetFaults(f)
	}))
	mux.HandleFunc("POST /sim/rollover", fault("on", func(on bool) {
		f := w.rx.Faults()
		f.WeekRollover = on
		w.rx.SetFaults(f)
	}))
	mux.HandleFunc("POST /sim/clear", func(rw http.ResponseWriter, r *http.Request) {
		w.pps.Reset()
		w.rx.MovePosition(0, 0, 0)
		w.rx.SetFaults(sim.Faults{})
		fmt.Fprintln(rw, "ok cleared")
	})
	mux.HandleFunc("GET /sim/attack", func(rw http.ResponseWriter, r *http.Request) {
		f := w.rx.Faults()
		rw.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(rw, "{\"gnss_time_error_ns\": %d, \"uniform_cn0\": %t, \"week_rollover\": %t}\n",
			int64(w.pps.Phase(simTruth.Now())), f.UniformCN0, f.WeekRollover)
	})
}
