# Fails when the README's API example differs from examples/readme_example.c
# (the README shows the file between the markers <!-- api-example --> and
# <!-- /api-example -->, inside a ```c fence).
file(READ ${README} readme)
file(READ ${EXAMPLE} example)
string(REGEX MATCH "<!-- api-example -->\n```c\n(.*)```\n<!-- /api-example -->" _ "${readme}")
if(NOT CMAKE_MATCH_1)
  message(FATAL_ERROR "README.md has no api-example block")
endif()
if(NOT CMAKE_MATCH_1 STREQUAL example)
  message(FATAL_ERROR "README.md's API example differs from examples/readme_example.c")
endif()
message(STATUS "README API example matches examples/readme_example.c")
