// Stand-in for an engine release's `elasticsearch-keystore` where that release's tool is not
// published: the same change made by that release's own KeyStoreWrapper (server jar on the
// classpath, reached by reflection so one class file serves every release), one JVM per run.
//
//   create DIR NAME...   a new keystore (KeyStoreWrapper.create adds keystore.seed) plus NAMEs
//   add DIR NAME...      load + decrypt the keystore in DIR, set NAMEs, save (as `add --force`)
//   list DIR             the setting names, one a line
//   kdf ITERATIONS KEY_BITS COUNT   COUNT PBKDF2WithHmacSHA512 derivations (JCE), one time in
//                        ms a line, after two untimed ones: the Java side's floor
//
// Values come from standard input, one line per NAME, in order (never from arguments). The
// keystore has no password, as one the engine creates at first start.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.security.SecureRandom;
import java.util.Set;
import java.util.TreeSet;
import javax.crypto.SecretKeyFactory;
import javax.crypto.spec.PBEKeySpec;

public final class WrapperTool {
  private static final String[] PACKAGES = {
    "org.elasticsearch.common.settings", "org.opensearch.common.settings"
  };
  private static final char[] NO_PASSWORD = new char[0];

  public static void main(String[] args) throws Exception {
    if (args.length < 2) fail("usage: create|add DIR NAME... | list DIR | kdf ITER BITS COUNT");
    switch (args[0]) {
      case "kdf":
        kdf(Integer.parseInt(args[1]), Integer.parseInt(args[2]), Integer.parseInt(args[3]));
        return;
      case "create":
      case "add":
      case "list":
        break;
      default:
        fail("unknown command " + args[0]);
    }
    Class<?> wrapper = wrapperClass();
    Path dir = Paths.get(args[1]);
    if (args[0].equals("list")) {
      Object ks = open(wrapper, dir);
      for (Object name : new TreeSet<>((Set<?>) call(ks, "getSettingNames"))) System.out.println(name);
      return;
    }
    Object ks = args[0].equals("create") ? callStatic(wrapper, "create") : open(wrapper, dir);
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    for (int i = 2; i < args.length; i++) {
      String value = in.readLine();
      if (value == null) fail("no value on standard input for " + args[i]);
      call(ks, "setString", args[i], value.toCharArray());
    }
    save(wrapper, ks, dir);
  }

  private static void kdf(int iterations, int keyBits, int count) throws Exception {
    SecretKeyFactory factory = SecretKeyFactory.getInstance("PBKDF2WithHmacSHA512");
    byte[] salt = new byte[64];
    new SecureRandom().nextBytes(salt);
    for (int i = -2; i < count; i++) {
      long start = System.nanoTime();
      factory.generateSecret(new PBEKeySpec(NO_PASSWORD, salt, iterations, keyBits)).getEncoded();
      long nanos = System.nanoTime() - start;
      if (i >= 0) System.out.printf("%.3f%n", nanos / 1e6);
    }
  }

  private static Class<?> wrapperClass() {
    for (String pkg : PACKAGES) {
      try {
        return Class.forName(pkg + ".KeyStoreWrapper");
      } catch (ClassNotFoundException e) {
        // the other engine's package
      }
    }
    fail("no KeyStoreWrapper on the classpath");
    return null;
  }

  private static Object open(Class<?> wrapper, Path dir) throws Exception {
    Object ks = callStatic(wrapper, "load", dir);
    if (ks == null) fail("no keystore in " + dir);
    call(ks, "decrypt", (Object) NO_PASSWORD);
    return ks;
  }

  // save(Path, char[]) in most releases; save(Path, char[], boolean preserveOwnership) in some.
  private static void save(Class<?> wrapper, Object ks, Path dir) throws Exception {
    boolean hasTwo = false;
    for (Method m : wrapper.getDeclaredMethods()) {
      hasTwo |= m.getName().equals("save") && m.getParameterCount() == 2;
    }
    if (hasTwo) {
      invoke(find(wrapper, "save", 2), ks, dir, NO_PASSWORD);
    } else {
      invoke(find(wrapper, "save", 3), ks, dir, NO_PASSWORD, Boolean.TRUE);
    }
  }

  private static Object callStatic(Class<?> wrapper, String name, Object... args) throws Exception {
    return invoke(find(wrapper, name, args.length), null, args);
  }

  private static Object call(Object target, String name, Object... args) throws Exception {
    return invoke(find(target.getClass(), name, args.length), target, args);
  }

  // Public methods first; some releases keep setString and save package-private.
  private static Method find(Class<?> type, String name, int arity) {
    for (Method m : type.getMethods()) {
      if (m.getName().equals(name) && m.getParameterCount() == arity) return m;
    }
    for (Method m : type.getDeclaredMethods()) {
      if (m.getName().equals(name) && m.getParameterCount() == arity) {
        m.setAccessible(true);
        return m;
      }
    }
    fail(type.getName() + " has no method " + name + " with " + arity + " parameters");
    return null;
  }

  private static Object invoke(Method m, Object target, Object... args) throws Exception {
    try {
      return m.invoke(target, args);
    } catch (InvocationTargetException e) {
      Throwable cause = e.getCause();
      if (cause instanceof Exception) throw (Exception) cause;
      throw e;
    }
  }

  private static void fail(String message) {
    System.err.println("WrapperTool: " + message);
    System.exit(2);
  }
}
