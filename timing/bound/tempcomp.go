package bound

// TempComp is the optional temperature-compensation hook for holdover: it
// learns, while locked, how the oscillator's frequency follows temperature
// (a weighted linear regression with exponential forgetting), so that in
// holdover the held frequency can follow the temperature input.
type TempComp struct {
	// Memory is the forgetting time constant in samples (default 86400).
	Memory float64

	w, st, sf, stt, stf float64
}

// Add records one locked observation: temperature (°C) and the servo's
// frequency correction (ppb) at that moment.
func (c *TempComp) Add(tempC, freqPPB float64) {
	mem := c.Memory
	if mem <= 0 {
		mem = 86400
	}
	d := 1 - 1/mem
	c.w = c.w*d + 1
	c.st = c.st*d + tempC
	c.sf = c.sf*d + freqPPB
	c.stt = c.stt*d + tempC*tempC
	c.stf = c.stf*d + tempC*freqPPB
}

// Coefficient returns the fitted slope of frequency correction against
// temperature (ppb/°C). ok is false until the temperature has varied by a
// few hundredths of a degree over the memory.
func (c *TempComp) Coefficient() (ppbPerC float64, ok bool) {
	if c.w < 2 {
		return 0, false
	}
	mt := c.st / c.w
	vt := c.stt/c.w - mt*mt
	if vt < 1e-3 {
		return 0, false
	}
	return (c.stf/c.w - mt*c.sf/c.w) / vt, true
}

// Correct returns the holdover frequency for temperature tempC, given the
// frequency held at the start of holdover and the temperature then. Without
// a usable fit it returns heldPPB unchanged.
func (c *TempComp) Correct(heldPPB, heldTempC, tempC float64) float64 {
	k, ok := c.Coefficient()
	if !ok {
		return heldPPB
	}
	return heldPPB + k*(tempC-heldTempC)
}
