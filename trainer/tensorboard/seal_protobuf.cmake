# seal_protobuf.cmake — run with cmake -P at build time (trainer/CMakeLists.txt):
#   -DLINKER= -DOBJCOPY= -DNM= -DOUT=sealed.o -DARCHIVE=libprotobuf-lite.a -DOBJECTS="a.o|b.o"
# 1. ld -r: our objects + the whole protobuf-lite archive -> one relocatable object;
# 2. every google::protobuf symbol made local (objcopy --localize-symbol), so nothing outside the
#    object can bind to them and they bind to nothing outside it;
# 3. protobuf's STB_GNU_UNIQUE symbols (function-local statics of inline functions and template
#    constants, e.g. ShutdownData::get()::data) cannot be made local — the dynamic linker merges
#    unique symbols of one name process-wide, i.e. with libsentencepiece's own protobuf copy — so
#    they are renamed (prefix _sk_sealed) to names nobody else has.
set(_tmp ${OUT}.tmp.o)
string(REPLACE "|" ";" OBJECTS "${OBJECTS}")
execute_process(COMMAND ${LINKER} -r -o ${_tmp} ${OBJECTS} --whole-archive ${ARCHIVE} --no-whole-archive
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "seal_protobuf: ld -r failed")
endif()
execute_process(COMMAND ${NM} ${_tmp} OUTPUT_VARIABLE syms RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "seal_protobuf: nm failed")
endif()
string(REPLACE "\n" ";" lines "${syms}")
set(renames "")
foreach(l ${lines})
  if(l MATCHES "^[0-9a-f]* *u (.*6google8protobuf.*)$")
    string(APPEND renames "${CMAKE_MATCH_1} _sk_sealed${CMAKE_MATCH_1}\n")
  endif()
endforeach()
file(WRITE ${OUT}.renames "${renames}")
execute_process(COMMAND ${OBJCOPY} --redefine-syms=${OUT}.renames --wildcard "--localize-symbol=*6google8protobuf*"
                        ${_tmp} ${OUT}
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "seal_protobuf: objcopy failed")
endif()
file(REMOVE ${_tmp})
