package gptimage

import (
	"net/http"
	"slices"

	"github.com/easel-bot/easel/core"
)

// ImageMIME returns im's media type, sniffing it from the bytes when unset.
func ImageMIME(im core.Image) string {
	if im.MIME != "" {
		return im.MIME
	}
	return http.DetectContentType(im.Data)
}

// OutputMIME returns the media type of an output image: from the answer's
// output_format, else sniffed from the bytes, else the requested format's.
func OutputMIME(answered, requested string, data []byte) string {
	switch answered {
	case "png", "jpeg", "webp", "gif":
		return "image/" + answered
	}
	if sniffed := http.DetectContentType(data); slices.Contains([]string{"image/png", "image/jpeg", "image/webp", "image/gif"}, sniffed) {
		return sniffed
	}
	return core.MIMEForFormat(requested)
}

// UsageOf maps OpenAI's token counts of an image model onto core.Usage.
// When the answer has no breakdown of its input tokens, they are counted as
// text.
func UsageOf(input, text, image, output int64) core.Usage {
	if text == 0 && image == 0 {
		text = input
	}
	return core.Usage{InputTextTokens: text, InputImageTokens: image, OutputTokens: output}
}
