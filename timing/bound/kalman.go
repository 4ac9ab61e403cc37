package bound

// PhaseFilter is a two-state Kalman filter on clock phase x (ns, local minus
// reference) and free-running frequency error y (ppb, i.e. ns per second).
// Between measurements the phase evolves as x += y·dt + control, where
// control is the phase the caller steered in (ns) over the interval.
//
// Noise model: white phase noise on measurements (R, ns²), white frequency
// noise (Qwf, ns²/s) and random-walk frequency noise (Qrw, ppb²/s).
type PhaseFilter struct {
	R, Qwf, Qrw float64 // noise parameters

	X, Y          float64 // state estimate
	Pxx, Pxy, Pyy float64 // covariance
}

// Init sets the state and a diagonal covariance (standard deviations given).
func (f *PhaseFilter) Init(x, sigmaX, y, sigmaY float64) {
	f.X, f.Y = x, y
	f.Pxx, f.Pxy, f.Pyy = sigmaX*sigmaX, 0, sigmaY*sigmaY
}

// Predict advances the filter by dt seconds during which the caller steered
// the phase by controlNs.
func (f *PhaseFilter) Predict(dt, controlNs float64) {
	f.X += f.Y*dt + controlNs
	dt2 := dt * dt
	f.Pxx += 2*dt*f.Pxy + dt2*f.Pyy + f.Qwf*dt + f.Qrw*dt2*dt/3
	f.Pxy += dt*f.Pyy + f.Qrw*dt2/2
	f.Pyy += f.Qrw * dt
}

// Innovation returns the measurement residual z − x̂ and its variance.
func (f *PhaseFilter) Innovation(z float64) (innov, variance float64) {
	return z - f.X, f.Pxx + f.R
}

// Update folds in a phase measurement z (ns).
func (f *PhaseFilter) Update(z float64) {
	innov, s := f.Innovation(z)
	kx, ky := f.Pxx/s, f.Pxy/s
	f.X += kx * innov
	f.Y += ky * innov
	pxx, pxy := f.Pxx, f.Pxy
	f.Pxx = pxx - kx*pxx
	f.Pxy = pxy - kx*pxy
	f.Pyy -= ky * pxy
}

// Project returns the phase and its variance dt seconds after the current
// estimate, with controlNs steered in, without changing the filter.
func (f *PhaseFilter) Project(dt, controlNs float64) (x, variance float64) {
	g := *f
	g.Predict(dt, controlNs)
	return g.X, g.Pxx
}
