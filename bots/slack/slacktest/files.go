package slacktest

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// File is a file as Slack describes it in events (the fields a bot reads).
type File struct {
	ID                 string `json:"id"`
	Name               string `json:"name"`
	Title              string `json:"title"`
	Mimetype           string `json:"mimetype"`
	Filetype           string `json:"filetype"`
	Size               int    `json:"size"`
	User               string `json:"user"`
	Mode               string `json:"mode"`
	URLPrivate         string `json:"url_private"`
	URLPrivateDownload string `json:"url_private_download"`
}

// file is a stored file's bytes.
type file struct {
	meta File
	data []byte
}

// AddFile stores a file that user uploaded in the first workspace,
// downloadable with its bot token from its url_private_download, and
// returns its description for a message's files.
func (s *Server) AddFile(user, name, mimetype string, data []byte) File {
	return s.AddTeamFile(s.TeamID, user, name, mimetype, data)
}

// AddTeamFile is AddFile for a file of workspace team, downloadable with
// a token of team.
func (s *Server) AddTeamFile(team, user, name, mimetype string, data []byte) File {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextID("F")
	path := fmt.Sprintf("%s/files-pri/%s-%s/", s.srv.URL, team, id)
	f := File{ID: id, Name: name, Title: name, Mimetype: mimetype, Filetype: strings.TrimPrefix(mimetype, "image/"),
		Size: len(data), User: user, Mode: "hosted",
		URLPrivate: path + url.PathEscape(name), URLPrivateDownload: path + "download/" + url.PathEscape(name)}
	s.files[id] = &file{meta: f, data: data}
	return f
}

// getUploadURL serves files.getUploadURLExternal; s.mu is held.
func (s *Server) getUploadURL(p map[string]string) reply {
	length, err := strconv.Atoi(p["length"])
	if p["filename"] == "" || err != nil || length < 1 {
		return failed("invalid_arguments")
	}
	u := &Upload{FileID: s.nextID("F"), Filename: p["filename"], Length: length, AltText: p["alt_txt"]}
	s.uploads = append(s.uploads, u)
	return ok(map[string]any{"upload_url": s.srv.URL + "/upload/" + u.FileID, "file_id": u.FileID})
}

// completeUpload serves files.completeUploadExternal: the uploaded files are
// shared in one message in the channel (or thread), with initial_comment as
// its text; s.mu is held.
func (s *Server) completeUpload(caller team, p map[string]string) reply {
	var files []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	if json.Unmarshal([]byte(p["files"]), &files) != nil || len(files) == 0 {
		return failed("invalid_arguments")
	}
	channel := p["channel_id"]
	if ts := p["thread_ts"]; ts != "" && (channel == "" || s.find(channel, ts) == nil) {
		return failed("invalid_thread_ts")
	}
	var done []map[string]any
	m := &Message{Channel: channel, ThreadTS: p["thread_ts"], User: caller.botUser, BotID: caller.botID, Text: p["initial_comment"]}
	for _, f := range files {
		u := s.upload(f.ID)
		switch {
		case u == nil:
			return failed("file_not_found")
		case u.Data == nil:
			return failed("file_upload_incomplete")
		case len(u.Data) != u.Length:
			return failed("file_size_mismatch")
		}
		u.Completed, u.Title, u.Channel, u.ThreadTS, u.InitialComment = true, f.Title, channel, p["thread_ts"], p["initial_comment"]
		m.Files = append(m.Files, u.FileID)
		done = append(done, map[string]any{"id": u.FileID, "title": f.Title})
	}
	if channel != "" {
		m.TS = s.nextTS()
		s.messages = append(s.messages, m)
		s.posted(channel, m.ThreadTS)
	}
	return ok(map[string]any{"files": done})
}

// deleteFile serves files.delete for a file the bot uploaded: the file
// goes, and so does each message that shared only it (its comment is part
// of the share); s.mu is held.
func (s *Server) deleteFile(caller team, p map[string]string) reply {
	id := p["file"]
	u := s.upload(id)
	if u != nil && u.Channel != "" {
		if t := s.channelTeam(u.Channel); t.id != caller.id && (t.enterprise == "" || t.enterprise != caller.enterprise) {
			u = nil // another workspace's file is not found with this token
		}
	}
	switch {
	case id == "":
		return failed("invalid_arguments")
	case u == nil && s.files[id] != nil:
		return failed("cant_delete_file") // a user's file
	case u == nil:
		return failed("file_not_found")
	case u.Deleted:
		return failed("file_deleted")
	}
	u.Deleted = true
	for _, m := range s.messages {
		if i := slices.Index(m.Files, id); i >= 0 {
			m.Files = slices.Delete(m.Files, i, i+1)
			m.Deleted = m.Deleted || len(m.Files) == 0
		}
	}
	return ok(nil)
}

// upload returns the upload of file id; s.mu is held.
func (s *Server) upload(id string) *Upload {
	for _, u := range s.uploads {
		if u.FileID == id {
			return u
		}
	}
	return nil
}

// receiveUpload serves the upload URL: the file's bytes as the multipart
// field "file", or as the raw body.
func (s *Server) receiveUpload(w http.ResponseWriter, r *http.Request) {
	data, err := uploadBody(r)
	s.intercept("upload", map[string]string{"file_id": r.PathValue("id")})
	s.mu.Lock()
	defer s.mu.Unlock()
	call := Call{Method: "upload", Params: map[string]string{"file_id": r.PathValue("id")}, At: time.Now(), Status: http.StatusOK}
	if t, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); found {
		call.Token = t
	}
	defer func() { s.calls = append(s.calls, call); s.changed() }()
	u := s.upload(r.PathValue("id"))
	if u == nil || err != nil {
		call.Status = http.StatusBadRequest
		http.Error(w, "upload failed", call.Status)
		return
	}
	u.Data = data
	fmt.Fprintf(w, "OK - %d", len(data))
}

func uploadBody(r *http.Request) ([]byte, error) {
	ct, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "multipart/form-data" {
		return io.ReadAll(r.Body)
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err != nil {
			return nil, fmt.Errorf("slacktest: no file part: %w", err)
		}
		if part.FormName() == "file" {
			return io.ReadAll(part)
		}
	}
}

// download serves a private file to a request with a bot token of its
// workspace; others are redirected to the sign-in page, as files.slack.com
// does.
func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	owner, id, _ := strings.Cut(r.PathValue("file"), "-")
	f := s.files[id]
	caller, known := s.tokenTeam(token)
	call := Call{Method: "download", Params: map[string]string{"file": id}, Token: token, At: time.Now(), Status: http.StatusOK}
	switch {
	case f == nil:
		call.Status = http.StatusNotFound
	case !known || !s.servesTeam(caller, token, owner):
		call.Status = http.StatusFound
	}
	s.calls = append(s.calls, call)
	s.changed()
	s.mu.Unlock()
	switch call.Status {
	case http.StatusNotFound:
		http.NotFound(w, r)
	case http.StatusFound:
		http.Redirect(w, r, "/signin?redir="+url.QueryEscape(r.URL.Path), http.StatusFound)
	default:
		w.Header().Set("Content-Type", f.meta.Mimetype)
		_, _ = w.Write(f.data)
	}
}

// signin is the page a download without the token lands on.
func (s *Server) signin(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, "<!DOCTYPE html><html><body>Sign in to fake.slack.com</body></html>")
}

// responseURL serves a slash command's response URL; what is posted there
// is recorded as an Ephemeral to the command's user.
func (s *Server) responseURL(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Text         string `json:"text"`
		ResponseType string `json:"response_type"`
	}
	err := json.NewDecoder(r.Body).Decode(&body)
	s.mu.Lock()
	defer s.mu.Unlock()
	call := Call{Method: "response_url", Params: map[string]string{"text": body.Text, "response_type": body.ResponseType},
		At: time.Now(), Status: http.StatusOK}
	defer func() { s.calls = append(s.calls, call); s.changed() }()
	user, known := s.responseUsers[r.PathValue("id")]
	if err != nil || !known {
		call.Status = http.StatusBadRequest
		http.Error(w, "bad response", call.Status)
		return
	}
	s.ephemerals = append(s.ephemerals, Ephemeral{User: user, Text: body.Text, ResponseURL: true})
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}
