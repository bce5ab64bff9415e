# CMake toolchain for a linux/arm64 build on a Debian amd64 host: Debian's cross compiler
# (g++-aarch64-linux-gnu), the arm64 libraries of dpkg's multiarch, tests run under qemu-user.
# tools/install-cross-deps.sh installs all of it; build.sh cross uses this file.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# find_library and find_package search <prefix>/lib/aarch64-linux-gnu, where the arm64
# packages put their libraries and CMake configs (libssl-dev:arm64, libgtest-dev:arm64), and
# never the host's x86_64-linux-gnu folder. Headers stay in /usr/include: the arm64 packages
# share them with the host's (arch-specific ones are under /usr/include/aarch64-linux-gnu,
# which the cross compiler searches first).
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
# FindOpenSSL asks pkg-config first: let it see the arm64 .pc files only.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")

# Every executable of the cross build is linked statically, the unit tests as well as the
# agent: qemu-user then needs no arm64 loader, and none is mixed up (Debian's cross C library,
# /usr/aarch64-linux-gnu, and the multiarch one, /lib/aarch64-linux-gnu, are different builds
# of glibc; a test binary whose loader came from one and libc.so from the other hangs).
set(CMAKE_EXE_LINKER_FLAGS_INIT -static)
# ctest and gtest_discover_tests run the arm64 executables through this.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
