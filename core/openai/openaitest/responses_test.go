package openaitest

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func postResponses(t *testing.T, s *Server, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", s.URL()+"/responses", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

const tool = `"tools":[{"type":"image_generation","model":"gpt-image-2","size":"1024x1024","action":"generate"}]`

// TestResponsesValidation rejects what the spec's CreateResponse and
// ImageGenTool do not allow, naming the parameter as OpenAI does.
func TestResponsesValidation(t *testing.T) {
	s := NewServer(t)
	img := base64.StdEncoding.EncodeToString(pngBytes(t))
	for _, tc := range []struct {
		name, body  string
		status      int
		param, code string
	}{
		{"unknown parameter", `{"model":"gpt-5.5","input":"x","prompt_text":"y"}`, 400, "prompt_text", "unknown_parameter"},
		{"no model", `{"input":"x"}`, 400, "model", "missing_required_parameter"},
		{"image model leading", `{"model":"gpt-image-2","input":"x"}`, 400, "model", "invalid_value"},
		{"no input", `{"model":"gpt-5.5",` + tool + `}`, 400, "input", "missing_required_parameter"},
		{"store not a boolean", `{"model":"gpt-5.5","input":"x","store":"yes"}`, 400, "store", "invalid_type"},
		{"bad role", `{"model":"gpt-5.5","input":[{"role":"robot","content":"x"}]}`, 400, "input[0].role", "invalid_value"},
		{"image without detail", `{"model":"gpt-5.5","input":[{"role":"user","content":[{"type":"input_image","image_url":"data:image/png;base64,` + img + `"}]}]}`, 400, "input[0].content[0].detail", "missing_required_parameter"},
		{"image of the wrong type", `{"model":"gpt-5.5","input":[{"role":"user","content":[{"type":"input_image","detail":"auto","image_url":"data:image/jpeg;base64,` + img + `"}]}]}`, 400, "input[0].content[0].image_url", "invalid_image"},
		{"image by URL", `{"model":"gpt-5.5","input":[{"role":"user","content":[{"type":"input_image","detail":"auto","image_url":"https://example.com/a.png"}]}]}`, 400, "input[0].content[0].image_url", "invalid_image_url"},
		{"input_text from the assistant", `{"model":"gpt-5.5","input":[{"role":"assistant","content":[{"type":"input_text","text":"x"}]}]}`, 400, "input[0].content[0].type", "invalid_value"},
		{"unknown tool parameter", `{"model":"gpt-5.5","input":"x","tools":[{"type":"image_generation","n":2}]}`, 400, "tools[0].n", "unknown_parameter"},
		{"bad action", `{"model":"gpt-5.5","input":"x","tools":[{"type":"image_generation","action":"draw"}]}`, 400, "tools[0].action", "invalid_value"},
		{"bad quality", `{"model":"gpt-5.5","input":"x","tools":[{"type":"image_generation","quality":"ultra"}]}`, 400, "tools[0].quality", "invalid_value"},
		{"partial images above 3", `{"model":"gpt-5.5","input":"x","tools":[{"type":"image_generation","partial_images":4}]}`, 400, "tools[0].partial_images", ""},
		{"fidelity with gpt-image-2", `{"model":"gpt-5.5","input":"x","tools":[{"type":"image_generation","input_fidelity":"high"}]}`, 400, "tools[0].input_fidelity", "unsupported_parameter"},
		{"size not a multiple of 16", `{"model":"gpt-5.5","input":"x","tools":[{"type":"image_generation","size":"1000x1000"}]}`, 400, "tools[0].size", "invalid_value"},
		{"unserved image model", `{"model":"gpt-5.5","input":"x","tools":[{"type":"image_generation","model":"dall-e-3"}]}`, 404, "tools[0].model", "model_not_found"},
		{"bad tool choice", `{"model":"gpt-5.5","input":"x","tool_choice":"always"}`, 400, "tool_choice", "invalid_value"},
		{"malformed previous id", `{"model":"gpt-5.5","input":"x","previous_response_id":"resp 1"}`, 400, "previous_response_id", "invalid_value"},
		{"unknown previous id", `{"model":"gpt-5.5","input":"x","previous_response_id":"resp_nope"}`, 400, "previous_response_id", "previous_response_not_found"},
		{"text not an object", `{"model":"gpt-5.5","input":"x","text":"json"}`, 400, "text", "invalid_type"},
		{"unknown text format", `{"model":"gpt-5.5","input":"x","text":{"format":{"type":"yaml"}}}`, 400, "text.format.type", "invalid_value"},
		{"json schema without a name", `{"model":"gpt-5.5","input":"x","text":{"format":{"type":"json_schema","schema":{"type":"object"}}}}`, 400, "text.format.name", "missing_required_parameter"},
		{"json schema with a bad name", `{"model":"gpt-5.5","input":"x","text":{"format":{"type":"json_schema","name":"a b","schema":{"type":"object"}}}}`, 400, "text.format.name", "invalid_value"},
		{"json schema without a schema", `{"model":"gpt-5.5","input":"x","text":{"format":{"type":"json_schema","name":"s"}}}`, 400, "text.format.schema", "missing_required_parameter"},
		{"json schema not an object", `{"model":"gpt-5.5","input":"x","text":{"format":{"type":"json_schema","name":"s","schema":{"type":"array"}}}}`, 400, "text.format.schema", "invalid_json_schema"},
		{"unknown text format field", `{"model":"gpt-5.5","input":"x","text":{"format":{"type":"text","name":"s"}}}`, 400, "text.format.name", "unknown_parameter"},
		{"edit with nothing to edit", `{"model":"gpt-5.5","input":"make it red",` + strings.Replace(tool, "generate", "edit", 1) + `}`, 400, "tools[0].action", "invalid_value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, postResponses(t, s, tc.body), tc.status, tc.param, tc.code)
		})
	}
	if len(s.Images()) != 0 {
		t.Error("a rejected request made an image")
	}
}

// TestResponsesChain: an image, a question answered in words continuing it,
// an edit continuing the answer, a request continuing an unstored response.
func TestResponsesChain(t *testing.T) {
	s := NewServer(t)
	res := postResponses(t, s, `{"model":"gpt-5.5","input":"a shop sign",`+tool+`}`)
	var first map[string]any
	if err := json.NewDecoder(res.Body).Decode(&first); err != nil || res.StatusCode != 200 {
		t.Fatalf("status %d: %v", res.StatusCode, err)
	}
	for _, f := range []string{"id", "object", "created_at", "error", "incomplete_details", "instructions", "model", "tools", "output",
		"parallel_tool_calls", "metadata", "tool_choice", "temperature", "top_p", "usage", "status"} {
		if _, ok := first[f]; !ok {
			t.Errorf("response lacks %q, which the spec requires", f)
		}
	}
	out := first["output"].([]any)[0].(map[string]any)
	data, _ := base64.StdEncoding.DecodeString(out["result"].(string))
	if out["type"] != "image_generation_call" || out["status"] != "completed" || out["revised_prompt"] != RevisePrompt("a shop sign") ||
		string(data) != string(s.Images()[0]) {
		t.Errorf("output item %v", out)
	}
	if tu, ok := first["tool_usage"].(map[string]any); !ok || tu["image_gen"] == nil {
		t.Errorf("tool_usage %v", first["tool_usage"])
	}
	id := first["id"].(string)

	res = postResponses(t, s, `{"model":"gpt-5.5","input":"what does it say?","previous_response_id":"`+id+`",`+tool+`}`)
	var second struct {
		ID     string `json:"id"`
		Output []struct {
			Type    string `json:"type"`
			Content []struct {
				Type, Text string
			} `json:"content"`
		} `json:"output"`
	}
	_ = json.NewDecoder(res.Body).Decode(&second)
	if len(second.Output) != 1 || second.Output[0].Type != "message" || second.Output[0].Content[0].Text != AnswerTo("what does it say?") {
		t.Errorf("answer %+v", second)
	}
	r := s.LastRequest(t)
	if r.PreviousResponseID != id || r.Context != 1 || r.Text == "" || len(s.Images()) != 1 {
		t.Errorf("question: previous %q context %d text %q images %d", r.PreviousResponseID, r.Context, r.Text, len(s.Images()))
	}

	postResponses(t, s, `{"model":"gpt-5.5","input":"make it red","store":false,"previous_response_id":"`+second.ID+`",`+strings.Replace(tool, "generate", "edit", 1)+`}`)
	r = s.LastRequest(t)
	if r.Status != 200 || string(r.Edited) != string(s.Images()[0]) || s.Stored(r.ResponseID) {
		t.Errorf("edit: status %d, edited the first image %v, stored %v", r.Status, string(r.Edited) == string(s.Images()[0]), s.Stored(r.ResponseID))
	}
	wantError(t, postResponses(t, s, `{"model":"gpt-5.5","input":"again","previous_response_id":"`+r.ResponseID+`"}`), 400, "previous_response_id", "previous_response_not_found")
	s.Forget(id)
	wantError(t, postResponses(t, s, `{"model":"gpt-5.5","input":"again","previous_response_id":"`+id+`"}`), 400, "previous_response_id", "previous_response_not_found")
}

// TestResponsesStream sends the events of the spec, in OpenAI's order, with
// partial images and the final response; and words as text events.
func TestResponsesStream(t *testing.T) {
	s := NewServer(t)
	res := postResponses(t, s, `{"model":"gpt-5.5","input":"a fox","stream":true,"tools":[{"type":"image_generation","partial_images":2}]}`)
	events, data := readSSE(t, res.Body)
	want := []string{"response.created", "response.in_progress", "response.output_item.added", "response.image_generation_call.in_progress",
		"response.image_generation_call.generating", "response.image_generation_call.partial_image", "response.image_generation_call.partial_image",
		"response.image_generation_call.completed", "response.output_item.done", "response.completed"}
	if strings.Join(events, ",") != strings.Join(want, ",") {
		t.Fatalf("events %v\nwant %v", events, want)
	}
	for i, d := range data {
		if d["type"] != events[i] || d["sequence_number"] != float64(i) {
			t.Errorf("event %d %q: type %v sequence %v", i, events[i], d["type"], d["sequence_number"])
		}
	}
	if data[6]["partial_image_index"] != float64(1) || data[6]["partial_image_b64"] == "" || len(s.Partials()) != 2 {
		t.Errorf("partial %v, %d partials kept", data[6]["partial_image_index"], len(s.Partials()))
	}
	final := data[9]["response"].(map[string]any)
	if final["status"] != "completed" || final["usage"] == nil || len(final["output"].([]any)) != 1 {
		t.Errorf("final response %v", final)
	}

	res = postResponses(t, s, `{"model":"gpt-5.5","input":"which fox?","stream":true,"tools":[{"type":"image_generation"}]}`)
	events, data = readSSE(t, res.Body)
	want = []string{"response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
		"response.output_text.delta", "response.output_text.delta", "response.output_text.done", "response.content_part.done",
		"response.output_item.done", "response.completed"}
	if strings.Join(events, ",") != strings.Join(want, ",") {
		t.Fatalf("events %v\nwant %v", events, want)
	}
	if data[6]["text"] != AnswerTo("which fox?") {
		t.Errorf("text %v", data[6]["text"])
	}

	s.Fail(StreamError(), ResponseFailed("server_error"))
	res = postResponses(t, s, `{"model":"gpt-5.5","input":"a fox","stream":true,"tools":[{"type":"image_generation","partial_images":2}]}`)
	events, data = readSSE(t, res.Body)
	if last := len(events) - 1; events[last] != "error" || data[last]["message"] == "" || events[last-1] != "response.image_generation_call.partial_image" {
		t.Errorf("stream error: events %v", events)
	}
	res = postResponses(t, s, `{"model":"gpt-5.5","input":"a fox","stream":true,"tools":[{"type":"image_generation"}]}`)
	events, data = readSSE(t, res.Body)
	if last := len(events) - 1; events[last] != "response.failed" || data[last]["response"].(map[string]any)["error"].(map[string]any)["code"] != "server_error" {
		t.Errorf("failed response: events %v", events)
	}
}

// TestResponsesModeration fails the image call inside a completed answer.
func TestResponsesModeration(t *testing.T) {
	s := NewServer(t)
	s.Fail(ModerationBlocked())
	res := postResponses(t, s, `{"model":"gpt-5.5","input":"something forbidden",`+tool+`}`)
	body, _ := io.ReadAll(res.Body)
	var resp struct {
		Status string `json:"status"`
		Output []struct {
			Status string          `json:"status"`
			Result json.RawMessage `json:"result"`
			Error  struct{ Code string }
		} `json:"output"`
	}
	if err := json.Unmarshal(body, &resp); err != nil || res.StatusCode != 200 {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	if resp.Status != "completed" || len(resp.Output) != 1 || resp.Output[0].Status != "failed" || string(resp.Output[0].Result) != "null" ||
		resp.Output[0].Error.Code != "moderation_blocked" {
		t.Errorf("answer %s", body)
	}
}
