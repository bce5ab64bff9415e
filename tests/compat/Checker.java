// A long-lived checker for one engine version's own keystore code: the KeyStoreWrapper of the
// Elasticsearch or OpenSearch server jar on the classpath, reached through reflection (so this
// file compiles without any engine jar, and one class file serves every version).
//
// One command per line on standard input, fields separated by tabs; one verdict line per
// command on standard output: "ok<TAB><detail>" or "fail<TAB><reason>". Values and passwords
// are only ever read from and written to files; verdicts name settings, never their values.
//
//   create  DIR PASSWORD_FILE ENTRIES_FILE   new keystore (the engine adds keystore.seed), plus
//                                            the entries, saved into DIR with the password
//   check   DIR PASSWORD_FILE ENTRIES_FILE   load + decrypt; the names must be exactly those of
//                                            the file, and every value equal byte for byte
//   export  DIR PASSWORD_FILE OUT_FILE       load + decrypt; write every entry to OUT_FILE
//   refuses DIR PASSWORD_FILE                load works, decrypt with this password must fail
//   quit
//
// Password file: UTF-8, one trailing newline stripped, empty means no password.
// Entries file: one entry per line, "string|file|seed<TAB>name<TAB>base64(value bytes)". A
// string entry is set with setString (its bytes are UTF-8) and checked with getString, and with
// getFile too where the engine allows it (formats 4 and up); a file entry is set with setFile and
// read with getFile; a seed entry (keystore.seed made by the agent,
// value unknown) must be a string of 20 characters from the engines' seed alphabet.
import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

public final class Checker {
  private static final String[] PACKAGES = {
    "org.elasticsearch.common.settings", "org.opensearch.common.settings"
  };

  private final Class<?> wrapper;

  private Checker(Class<?> wrapper) {
    this.wrapper = wrapper;
  }

  public static void main(String[] args) throws Exception {
    Class<?> wrapper = null;
    for (String pkg : PACKAGES) {
      try {
        wrapper = Class.forName(pkg + ".KeyStoreWrapper");
        break;
      } catch (ClassNotFoundException e) {
        // try the next engine's package
      } catch (LinkageError e) {
        System.out.println("fail\t" + pkg + ".KeyStoreWrapper does not load: " + describe(e));
        System.exit(2);
      }
    }
    if (wrapper == null) {
      System.out.println("fail\tno KeyStoreWrapper on the classpath");
      System.exit(2);
    }
    Checker checker = new Checker(wrapper);
    System.out.println("ready\t" + wrapper.getName() + " from " + jarOf(wrapper));
    System.out.flush();
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    String line;
    while ((line = in.readLine()) != null) {
      String[] f = line.split("\t", -1);
      if (f[0].equals("quit")) break;
      String verdict;
      try {
        verdict = "ok\t" + checker.run(f);
      } catch (Failure e) {
        verdict = "fail\t" + e.getMessage();
      } catch (Throwable e) {
        verdict = "fail\t" + describe(e);
      }
      System.out.println(verdict.replace('\n', ' '));
      System.out.flush();
    }
  }

  private String run(String[] f) throws Exception {
    switch (f[0]) {
      case "create":
        need(f, 4);
        return create(Paths.get(f[1]), readPassword(f[2]), readEntries(f[3]));
      case "check":
        need(f, 4);
        return check(Paths.get(f[1]), readPassword(f[2]), readEntries(f[3]));
      case "export":
        need(f, 4);
        return export(Paths.get(f[1]), readPassword(f[2]), Paths.get(f[3]));
      case "refuses":
        need(f, 3);
        return refuses(Paths.get(f[1]), readPassword(f[2]));
      default:
        throw new Failure("unknown command [" + f[0] + "]");
    }
  }

  private String create(Path dir, char[] password, Map<String, Entry> entries) throws Exception {
    Object ks = callStatic("create");
    try {
      for (Entry e : entries.values()) {
        if (e.type.equals("file")) {
          call(ks, "setFile", e.name, e.value);
        } else {
          call(ks, "setString", e.name, utf8Chars(e.value, e.name));
        }
      }
      save(ks, dir, password);
      @SuppressWarnings("unchecked")
      Set<String> names = (Set<String>) call(ks, "getSettingNames");
      return "created " + names.size() + " entries, format=" + formatOf(load(dir));
    } finally {
      call(ks, "close");
    }
  }

  private String check(Path dir, char[] password, Map<String, Entry> expected) throws Exception {
    Object ks = open(dir, password);
    try {
      @SuppressWarnings("unchecked")
      Set<String> names = new TreeSet<>((Set<String>) call(ks, "getSettingNames"));
      Set<String> missing = new TreeSet<>(expected.keySet());
      missing.removeAll(names);
      Set<String> extra = new TreeSet<>(names);
      extra.removeAll(expected.keySet());
      if (!missing.isEmpty() || !extra.isEmpty()) {
        throw new Failure("names differ: missing " + missing + ", unexpected " + extra);
      }
      List<String> wrong = new ArrayList<>();
      List<String> padded = new ArrayList<>();
      for (Entry e : expected.values()) {
        if (e.type.equals("seed")) {
          if (!isSeed(readString(ks, e.name))) wrong.add(e.name + " (not 20 characters of the seed alphabet)");
        } else if (e.type.equals("file")) {
          compare(wrong, e, readFile(ks, e.name));
        } else {
          // The stored bytes, where the engine reads a string entry raw too (formats 4 and up) ...
          byte[] raw = readFileIfAllowed(ks, e.name);
          if (raw != null) compare(wrong, e, raw);
          // ... and the string the engine's settings get. Some releases' getString returns the
          // decoder's whole buffer (NUL padding after a non-ASCII value); that is accepted only
          // when the engine does exactly the same to the value it sets itself.
          byte[] str = readString(ks, e.name);
          if (Arrays.equals(str, e.value)) continue;
          if (Arrays.equals(str, ownRoundTrip(e))) {
            padded.add(e.name);
          } else {
            compare(wrong, e, str);
          }
        }
      }
      if (!wrong.isEmpty()) throw new Failure("values differ: " + wrong);
      String detail = names.size() + " entries, every value equal, format=" + formatOf(ks);
      if (!padded.isEmpty()) {
        detail += "; quirk: getString pads " + padded.size() + " non-ASCII value(s) with U+0000 "
            + "exactly as it does the engine's own entries (" + padded.get(0) + ")";
      }
      return detail;
    } finally {
      call(ks, "close");
    }
  }

  private String refuses(Path dir, char[] password) throws Exception {
    Object ks = load(dir);
    try {
      call(ks, "decrypt", (Object) password);
    } catch (GeneralSecurityException | SecurityException e) {
      return "decrypt refused: " + e.getMessage();
    } finally {
      call(ks, "close");
    }
    throw new Failure("decrypt accepted the password");
  }

  private static void compare(List<String> wrong, Entry e, byte[] actual) {
    if (!Arrays.equals(actual, e.value)) {
      wrong.add(e.name + " (" + actual.length + " bytes, expected " + e.value.length + ")");
    }
  }

  // What this engine's getString returns for the value when the engine itself set it.
  private byte[] ownRoundTrip(Entry e) throws Exception {
    Object ks = callStatic("create");
    try {
      call(ks, "setString", e.name, utf8Chars(e.value, e.name));
      return readString(ks, e.name);
    } finally {
      call(ks, "close");
    }
  }

  private byte[] readFileIfAllowed(Object ks, String name) throws Exception {
    try {
      return readFile(ks, name);
    } catch (IllegalArgumentException stringEntryOfFormat3) {
      return null;
    }
  }

  // keystore.seed as the engines make it: 20 characters of this alphabet.
  private static final String SEED_CHARS =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789~!@#$%^&*-_=+?";

  private static boolean isSeed(byte[] value) {
    String s = new String(value, StandardCharsets.UTF_8);
    return s.length() == 20 && s.chars().allMatch(c -> SEED_CHARS.indexOf(c) >= 0);
  }

  private static Object formatOf(Object ks) {
    try {
      return call(ks, "getFormatVersion");
    } catch (Exception e) {
      return "?";
    }
  }

  // Every entry with its bytes: getFile where the engine allows it (every entry of formats 4+,
  // FILE entries of format 3), otherwise getString (STRING entries of format 3).
  private String export(Path dir, char[] password, Path out) throws Exception {
    Object ks = open(dir, password);
    try {
      @SuppressWarnings("unchecked")
      Set<String> names = new TreeSet<>((Set<String>) call(ks, "getSettingNames"));
      StringBuilder sb = new StringBuilder();
      for (String name : names) {
        String type = "file";
        byte[] value;
        try {
          value = readFile(ks, name);
        } catch (IllegalArgumentException notAFile) {
          type = "string";
          value = readString(ks, name);
        }
        sb.append(type).append('\t').append(name).append('\t');
        sb.append(Base64.getEncoder().encodeToString(value)).append('\n');
      }
      Files.deleteIfExists(out);
      Files.createFile(out, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
      Files.write(out, sb.toString().getBytes(StandardCharsets.UTF_8), StandardOpenOption.TRUNCATE_EXISTING);
      return "exported " + names.size() + " entries";
    } finally {
      call(ks, "close");
    }
  }

  // --- the engine's API, through reflection ---------------------------------------------

  private Object load(Path dir) throws Exception {
    Object ks = callStatic("load", dir);
    if (ks == null) throw new Failure("no keystore in " + dir);
    return ks;
  }

  private Object open(Path dir, char[] password) throws Exception {
    Object ks = load(dir);
    call(ks, "decrypt", (Object) password);
    return ks;
  }

  private void save(Object ks, Path dir, char[] password) throws Exception {
    Method two = find(wrapper, "save", 2);
    if (two != null) {
      invoke(two, ks, dir, password);
    } else {
      invoke(find(wrapper, "save", 3), ks, dir, password, Boolean.TRUE);
    }
  }

  private byte[] readString(Object ks, String name) throws Exception {
    Object secure = call(ks, "getString", name);
    if (secure == null) throw new Failure("getString(" + name + ") returned null");
    char[] chars = (char[]) call(secure, "getChars");
    ByteBuffer bb = StandardCharsets.UTF_8.encode(CharBuffer.wrap(chars));
    byte[] bytes = new byte[bb.remaining()];
    bb.get(bytes);
    return bytes;
  }

  private byte[] readFile(Object ks, String name) throws Exception {
    try (InputStream in = (InputStream) call(ks, "getFile", name)) {
      if (in == null) throw new Failure("getFile(" + name + ") returned null");
      return in.readAllBytes();
    }
  }

  private Object callStatic(String name, Object... args) throws Exception {
    Method m = find(wrapper, name, args.length);
    if (m == null) throw new Failure(wrapper.getSimpleName() + " has no " + name + "/" + args.length);
    return invoke(m, null, args);
  }

  private static Object call(Object target, String name, Object... args) throws Exception {
    for (Class<?> c = target.getClass(); c != null; c = c.getSuperclass()) {
      Method m = find(c, name, args.length);
      if (m != null) return invoke(m, target, args);
    }
    throw new Failure(target.getClass().getSimpleName() + " has no " + name + "/" + args.length);
  }

  // A declared method by name and arity; some versions keep setString/setFile package-private.
  private static Method find(Class<?> c, String name, int arity) {
    for (Method m : c.getDeclaredMethods()) {
      if (m.getName().equals(name) && m.getParameterCount() == arity && !m.isSynthetic()) {
        m.setAccessible(true);
        return m;
      }
    }
    return null;
  }

  private static Object invoke(Method m, Object target, Object... args) throws Exception {
    try {
      return m.invoke(target, args);
    } catch (InvocationTargetException e) {
      Throwable cause = e.getCause();
      if (cause instanceof Exception) throw (Exception) cause;
      if (cause instanceof Error) throw (Error) cause;
      throw e;
    }
  }

  // --- files -------------------------------------------------------------------------------

  private static final class Entry {
    final String name;
    final byte[] value;
    final String type;  // string, file or seed

    Entry(String type, String name, byte[] value) {
      this.type = type;
      this.name = name;
      this.value = value;
    }
  }

  private static Map<String, Entry> readEntries(String file) throws Exception {
    Map<String, Entry> entries = new LinkedHashMap<>();
    for (String line : Files.readAllLines(Paths.get(file), StandardCharsets.UTF_8)) {
      if (line.isEmpty()) continue;
      String[] f = line.split("\t", -1);
      if (f.length != 3 || !(f[0].equals("string") || f[0].equals("file") || f[0].equals("seed"))) {
        throw new Failure("malformed line in " + file);
      }
      if (entries.put(f[1], new Entry(f[0], f[1], Base64.getDecoder().decode(f[2]))) != null) {
        throw new Failure("duplicate name " + f[1] + " in " + file);
      }
    }
    return entries;
  }

  private static char[] readPassword(String file) throws Exception {
    byte[] bytes = Files.readAllBytes(Paths.get(file));
    int len = bytes.length;
    if (len > 0 && bytes[len - 1] == '\n') len--;
    return utf8Chars(Arrays.copyOf(bytes, len), "the password");
  }

  private static char[] utf8Chars(byte[] bytes, String what) throws Failure {
    try {
      CharBuffer cb = StandardCharsets.UTF_8.newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(ByteBuffer.wrap(bytes));
      char[] chars = new char[cb.remaining()];
      cb.get(chars);
      return chars;
    } catch (CharacterCodingException e) {
      throw new Failure(what + " is not valid UTF-8");
    }
  }

  // --- verdicts ----------------------------------------------------------------------------

  private static final class Failure extends Exception {
    private static final long serialVersionUID = 1L;

    Failure(String message) {
      super(message);
    }
  }

  private static void need(String[] f, int n) throws Failure {
    if (f.length != n) throw new Failure(f[0] + " takes " + (n - 1) + " arguments");
  }

  private static String describe(Throwable e) {
    StringBuilder sb = new StringBuilder(e.getClass().getName() + ": " + e.getMessage());
    for (Throwable c = e.getCause(); c != null && c != c.getCause(); c = c.getCause()) {
      sb.append(" (caused by ").append(c.getClass().getName()).append(": ").append(c.getMessage()).append(')');
    }
    return sb.toString();
  }

  private static String jarOf(Class<?> c) {
    try {
      return Paths.get(c.getProtectionDomain().getCodeSource().getLocation().toURI()).getFileName().toString();
    } catch (Exception e) {
      return "?";
    }
  }
}
