package airlock

func runPlatformHelper() {}
