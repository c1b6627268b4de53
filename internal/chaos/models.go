package chaos

import (
	"fmt"
	"slices"

	"github.com/anishathalye/porcupine"
)

// Outcome is how an operation ended, as its client saw it.
type Outcome int

const (
	// OK means the operation took effect.
	OK Outcome = iota
	// Fail means it certainly did not take effect.
	Fail
	// Unknown means it may or may not have taken effect (a timeout).
	Unknown
)

func (o Outcome) String() string {
	return [...]string{"ok", "fail", "unknown"}[o]
}

// MutexOp is an operation on a strict mutex: acquire (Release false) or
// release by Client, who must be the operation's porcupine ClientId.
type MutexOp struct {
	Client  int
	Release bool
}

// MutexModel is the strict-mutex model (§4a, Jepsen's lock workload): the
// state is the holder's client id plus one (0 = free). An acquire that
// succeeded is legal only when free; a release only by the holder. An
// acquire of unknown outcome may or may not have taken the lock; a failed
// acquire changed nothing. Outputs are [Outcome]s.
//
// Without faults a history must be Ok. A holder paused past its lease's TTL
// while another acquires makes it Illegal, which shows that the harness sees
// what Jepsen saw: a lease-based lock alone cannot guarantee exclusion.
var MutexModel = porcupine.NondeterministicModel{
	Init: func() []any { return []any{0} },
	Step: func(state, input, output any) []any {
		s, in, out := state.(int), input.(MutexOp), output.(Outcome)
		me := in.Client + 1
		if !in.Release {
			switch {
			case out == Fail:
				return []any{s}
			case out == Unknown && s == 0:
				return []any{s, me}
			case out == Unknown:
				return []any{s}
			case s == 0:
				return []any{me}
			}
			return nil
		}
		switch {
		case out == OK && s == me:
			return []any{0}
		case out == OK:
			return nil
		case s == me:
			return []any{s, 0}
		}
		return []any{s}
	},
	DescribeOperation: func(input, output any) string {
		in := input.(MutexOp)
		if in.Release {
			return fmt.Sprintf("release(%d) → %v", in.Client, output)
		}
		return fmt.Sprintf("acquire(%d) → %v", in.Client, output)
	},
	DescribeState: func(state any) string {
		if s := state.(int); s > 0 {
			return fmt.Sprintf("held by %d", s-1)
		}
		return "free"
	},
}

// CounterOp is an operation on a counter kept in etcd: a locked increment
// (Inc) or a read.
type CounterOp struct {
	Key string
	Inc bool
}

// CounterResult is a counter operation's outcome: for an increment that
// succeeded, Value is the new value; for a read, the value read.
type CounterResult struct {
	Outcome Outcome
	Value   int64
}

// CounterModel is the fenced-counter model (§4b). Each locked increment
// reads the counter, then writes value+1 in a Txn guarded by the lock key's
// create revision and the counter's mod revision. The state is the counter:
// an increment that succeeded with new value v is legal iff v == s+1; a
// failed one (guard false) changes nothing; one of unknown outcome leaves s
// or s+1; a read of v is legal iff v == s. Histories are partitioned by key.
var CounterModel = porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(CounterOp).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() []any { return []any{int64(0)} },
	Step: func(state, input, output any) []any {
		s, in, out := state.(int64), input.(CounterOp), output.(CounterResult)
		if !in.Inc {
			if out.Outcome != OK || out.Value == s {
				return []any{s}
			}
			return nil
		}
		switch out.Outcome {
		case OK:
			if out.Value == s+1 {
				return []any{s + 1}
			}
			return nil
		case Fail:
			return []any{s}
		}
		return []any{s, s + 1}
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(CounterOp), output.(CounterResult)
		if in.Inc {
			return fmt.Sprintf("inc(%s) → %v %d", in.Key, out.Outcome, out.Value)
		}
		return fmt.Sprintf("read(%s) → %d", in.Key, out.Value)
	},
}

// RegisterOp is an operation on a [FenceStore] in [Enforcing] mode: a read
// or a write of Set with token Tok.
type RegisterOp struct {
	Tok   int64
	Write bool
	Set   []int
}

// RegisterResult is a register operation's outcome: whether the store
// accepted it and, for a read, the set it returned.
type RegisterResult struct {
	Accepted bool
	Set      []int
}

type registerState struct {
	max int64
	set string
}

// RegisterModel is the fenced-register model (c), for an [Enforcing]
// [FenceStore]: the state is (highest token, value). An operation with
// tok ≥ highest is accepted and raises the highest token (a write also sets
// the value, a read returns it); one with a lower token is rejected and
// changes nothing. It checks the store and the client plumbing, not a lock.
var RegisterModel = porcupine.Model{
	Init: func() any { return registerState{} },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(registerState), input.(RegisterOp), output.(RegisterResult)
		if out.Accepted != (in.Tok >= s.max) {
			return false, s
		}
		if !out.Accepted {
			return true, s
		}
		next := registerState{max: in.Tok, set: s.set}
		if in.Write {
			next.set = canonical(in.Set)
		} else if canonical(out.Set) != s.set {
			return false, s
		}
		return true, next
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(RegisterOp), output.(RegisterResult)
		if in.Write {
			return fmt.Sprintf("write(%d, %v) → %v", in.Tok, in.Set, out.Accepted)
		}
		return fmt.Sprintf("read(%d) → %v %v", in.Tok, out.Accepted, out.Set)
	},
}

func canonical(set []int) string {
	s := slices.Clone(set)
	slices.Sort(s)
	return formatSet(s)
}
