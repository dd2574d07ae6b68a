package core

import "errors"

// A provider may hold the thread as a conversation on its side: a model that
// reads every message, answers some in words and calls an image model for
// the others (see Result.Text). Each of its images and answers names the
// stored conversation state it ended in (Version.ResponseID,
// Turn.ResponseID), and a later turn continues from the right one: a
// refinement from the state that made the image it refines, or from an
// answer given about that image since; a branch from the older version's; a
// regeneration or variations from the state the original request continued.

// continuation returns where a turn that starts from version base (0: no
// image yet) continues the provider's conversation, as it stood before turn
// before (0: a turn not recorded yet, after all of them): the stored state
// to continue from (Turn.ResponseID of the latest
// answer given about base, else base's Version.ResponseID; "" for none) and
// the thread's text that led there (see GenerateRequest.Conversation).
//
// The text follows base's lineage: the prompts of the turns that made each
// version, and between them the answers in words given about each version
// before its child in the lineage was asked for, in order.
func (s *Session) continuation(base, before int) (string, []Exchange) {
	if before <= 0 {
		before = len(s.Turns) + 1
	}
	var conv []Exchange
	line := s.Lineage(base)
	prev := ""
	from := 0 // answers after this turn, about level, count
	level := 0
	for i := 0; i <= len(line); i++ {
		until := before
		if i < len(line) {
			until = line[i].Turn
		}
		for id := from + 1; id < until; id++ {
			t := s.Turn(id)
			if t == nil || t.Kind != KindAnswer || t.Status != StatusDone || t.Base != level {
				continue
			}
			conv = append(conv, Exchange{Prompt: t.Prompt, Answer: t.Answer})
			prev = t.ResponseID
		}
		if i == len(line) {
			break
		}
		v := line[i]
		if t := s.Turn(v.Turn); t != nil && t.Prompt != "" && t.Kind != KindHighQuality {
			conv = append(conv, Exchange{Prompt: t.Prompt})
		}
		prev, from, level = v.ResponseID, v.Turn, v.N
	}
	return prev, conv
}

// answer records j's turn, which the provider answered in words only, as a
// done KindAnswer turn with no version, and posts the answer.
func (e *Engine) answer(j *job, res Result) error {
	var sess *Session
	err := e.update(e.runCtx, "record an answer", j.sess.ID, func(s *Session) error {
		t := s.Turn(j.turn.ID)
		if err := stillLive(t); err != nil {
			return err
		}
		t.Kind, t.Base, t.Outputs = KindAnswer, j.base, nil
		t.Answer, t.ResponseID = res.Text, res.ResponseID
		t.Status, t.FinishedAt, t.Posting, t.Posted = StatusDone, e.now(), true, nil
		t.Model, t.Usage, t.CostUSD, t.Attempts = res.Model, res.Usage, res.CostUSD, j.turn.Attempts+j.attempts
		return nil
	}, &sess)
	if errors.Is(err, errCanceled) {
		return e.canceled(j, res)
	}
	if err != nil {
		return e.interrupted(j, err)
	}
	return e.conclude(j, sess, nil)
}

// answerText is how an answer in words is posted.
func answerText(answer string) string { return "💬 " + answer }
