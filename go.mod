module github.com/easel-bot/easel

go 1.26.8
