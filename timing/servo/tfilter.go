package servo

// tempFilter is a three-state Kalman filter: phase x (ns), free-running
// frequency y (ppb) and temperature coefficient c (ppb/°C). Over an
// interval of dt seconds at temperature T the phase advances by
// (y + c·T)·dt plus the steered-in control phase. Without a temperature
// input T stays 0 and the filter is the classic phase+frequency one.
//
// Noise: R (ns², timestamp), Qwf (ns²/s, white FM), Qrw (ppb²/s,
// random-walk FM), Qc ((ppb/°C)²/s, slow ageing of the coefficient).
type tempFilter struct {
	R, Qwf, Qrw, Qc float64
	s               [3]float64
	p               [3][3]float64
}

func (f *tempFilter) init(x, sx, y, sy, c, sc float64) {
	f.s = [3]float64{x, y, c}
	f.p = [3][3]float64{{sx * sx}, {0, sy * sy}, {0, 0, sc * sc}}
}

// predict advances by dt seconds at temperature temp with control phase u.
func (f *tempFilter) predict(dt, temp, u float64) {
	f.s[0] += (f.s[1]+f.s[2]*temp)*dt + u
	// P ← F P Fᵀ with F = [[1, dt, dt·T], [0, 1, 0], [0, 0, 1]].
	a, b := dt, dt*temp
	p := &f.p
	r0 := [3]float64{
		p[0][0] + a*p[1][0] + b*p[2][0],
		p[0][1] + a*p[1][1] + b*p[2][1],
		p[0][2] + a*p[1][2] + b*p[2][2],
	}
	p00 := r0[0] + a*r0[1] + b*r0[2]
	p[0][0], p[0][1], p[0][2] = p00, r0[1], r0[2]
	p[1][0], p[2][0] = r0[1], r0[2]
	dt2 := dt * dt
	p[0][0] += f.Qwf*dt + f.Qrw*dt2*dt/3
	p[0][1] += f.Qrw * dt2 / 2
	p[1][0] += f.Qrw * dt2 / 2
	p[1][1] += f.Qrw * dt
	p[2][2] += f.Qc * dt
}

// innovation returns z − x̂.
func (f *tempFilter) innovation(z float64) float64 { return z - f.s[0] }

// update folds in a phase measurement z.
func (f *tempFilter) update(z float64) { f.updateR(z, f.R) }

// updateR folds in z as a measurement of variance r: more than R for a
// sample trusted less than the model says (a robust, Huber-weighted update,
// whose covariance then shrinks only as much as the weight allows).
func (f *tempFilter) updateR(z, r float64) { f.updateState(0, z, r) }

// updateState folds in z as a direct measurement of state j with
// variance r: the phase (updateR), or a kept frequency (j = 1).
func (f *tempFilter) updateState(j int, z, r float64) {
	innov := z - f.s[j]
	p := &f.p
	s := p[j][j] + r
	var k [3]float64
	for i := range 3 {
		k[i] = p[i][j] / s
		f.s[i] += k[i] * innov
	}
	row := p[j]
	for i := range 3 {
		for l := range 3 {
			p[i][l] -= k[i] * row[l]
		}
	}
}
