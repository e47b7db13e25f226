package remedy_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/particle-flasher/particle-flasher/flasher/remedy"
)

type denied struct{}

func (denied) Error() string  { return "access denied" }
func (denied) Remedy() string { return "install the udev rule" }

func TestOf(t *testing.T) {
	cause := errors.New("erase sector 0x08020000: pipe")
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"none", cause, ""},
		{"direct", remedy.With(cause, "re-plug"), "re-plug"},
		{"wrapped", fmt.Errorf("step 2: %w", remedy.With(cause, "re-plug")), "re-plug"},
		{"outermost wins", remedy.With(fmt.Errorf("x: %w", remedy.With(cause, "inner")), "outer"), "outer"},
		{"Remedy method", fmt.Errorf("open: %w", denied{}), "install the udev rule"},
		{"joined", errors.Join(cause, fmt.Errorf("b: %w", denied{})), "install the udev rule"},
		{"With(nil) stays nil", remedy.With(nil, "x"), ""},
	} {
		assert.Equal(t, c.want, remedy.Of(c.err), c.name)
	}
	assert.Nil(t, remedy.With(nil, "x"))
}

func TestHuman(t *testing.T) {
	inner := remedy.WithCommand(errors.New("device refused the update"), "put it in DFU mode", "pflash flash --to 4.1.0")
	err := fmt.Errorf("no plan: %w", fmt.Errorf("plan: %w", fmt.Errorf("run: %w", inner)))
	assert.Equal(t, "Device refused the update", remedy.Human(err))
	assert.Equal(t, "put it in DFU mode", remedy.Of(err))
	assert.Equal(t, "pflash flash --to 4.1.0", remedy.Command(err))
	assert.Equal(t, "Erase 0x08020000: pipe", remedy.Human(errors.New("erase 0x08020000: pipe")), "only known package prefixes go")
	assert.Equal(t, "", remedy.Command(errors.New("x")))
}
