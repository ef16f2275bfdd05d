{
  "targets": [
    {
      "target_name": "http_sendfile",
      "sources": ["sendfile_pump.c", "../common/pump_base.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
