# Copies one .proto file, turning `import weak "x.proto"` into `import "x.proto"`.
# protoc's C++ generator aborts on weak imports ("weak imports are not supported"), and
# containerd's protos import gogo.proto and fieldpath.proto weakly only for Go options.
# Usage: cmake -DIN=<source.proto> -DOUT=<copy.proto> -P rewrite_proto.cmake
file(READ "${IN}" content)
string(REGEX REPLACE "import[ \t]+weak[ \t]+" "import " content "${content}")
file(WRITE "${OUT}" "${content}")
