import java.io.*;
import java.nio.charset.StandardCharsets;
import java.util.*;

// Differential fuzzer of RESTORE_RENAME_PATTERN: 'gen SEED COUNT' prints random patterns with
// a replacement (PATTERN TAB REPLACEMENT), 'apply' reads PATTERN TAB REPLACEMENT TAB NAME lines
// and prints NAME.replaceAll(PATTERN, REPLACEMENT), as the engine renames, or ERR.
public class RenameFuzz {
  static Random rnd;
  static int groups;
  static boolean anchor;
  static final String[] CHARS = {"a", "b", "c", "-", ".", "x", "é", "1", "&", "/", "\\.", "\\-", "\\$", "\\[", "\\]", "\\(", "\\{", "\\\\", "\\/"};
  static final String[] BAD = {"}", "]", "{", "\\d", "\\w", "[a&&b]", "[a-c&&[b]]", "[[a]b]", "[]a]", "[^]]", "[a-c-e]", "*+", "++", "{1,}{2}", "{,2}", "{x}", "(?i)", "\\p{L}"};
  static final String[] SETS = {"[ab]", "[^a]", "[a-c]", "[a-]", "[-a]", "[^-]", "[.]", "[$]", "[é-ú]", "[a\\-z]", "[\\]]", "[\\[]", "[a&b]", "[^^]", "[(]", "[)|]", "[0-9]", "[a-z.]", "[^.-]", "[{}]", "[*+?]", "[\\\\]", "[é]", "[a-x]"};
  static final String[] QUANT = {"", "", "", "", "*", "+", "?", "{2}", "{1,2}", "{0,1}", "{2,}", "{0}", "{1}", "*?", "+?", "??", "{2}?", "{1,}?", "{1,2}?"};
  static String atom(int depth) {
    if (rnd.nextInt(60) == 0) return BAD[rnd.nextInt(BAD.length)];
    int k = rnd.nextInt(depth > 2 ? 6 : 9);
    switch (k) {
      case 0: case 1: case 2: return CHARS[rnd.nextInt(CHARS.length)];
      case 3: return SETS[rnd.nextInt(SETS.length)];
      case 4: return ".";
      case 5: if (rnd.nextInt(3) > 0) return CHARS[rnd.nextInt(CHARS.length)]; anchor = true; return rnd.nextInt(2) == 0 ? "^" : "$";
      case 6: groups++; return "(" + alt(depth + 1) + ")";
      case 7: return "(?:" + alt(depth + 1) + ")";
      default: groups++; return "(" + alt(depth + 1) + ")";
    }
  }
  static String seq(int depth) {
    StringBuilder b = new StringBuilder();
    int n = 1 + rnd.nextInt(3);
    for (int i = 0; i < n; i++) {
      anchor = false;
      b.append(atom(depth));
      if (!anchor && rnd.nextInt(2) == 0) b.append(QUANT[rnd.nextInt(QUANT.length)]);
    }
    return b.toString();
  }
  static String alt(int depth) {
    String s = seq(depth);
    while (rnd.nextInt(4) == 0) s += "|" + (rnd.nextInt(6) == 0 ? "" : seq(depth));
    return s;
  }
  public static void main(String[] a) throws IOException {
    PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), false, StandardCharsets.UTF_8);
    if (a[0].equals("gen")) {
      rnd = new Random(Long.parseLong(a[1]));
      for (int i = 0, n = Integer.parseInt(a[2]); i < n; i++) {
        groups = 0;
        String p = seq(0);
        int g = Math.min(groups, 9);
        String rep = "z";
        switch (rnd.nextInt(5)) {
          case 0: rep = "$0"; break;
          case 1: if (g > 0) rep = "<$" + (1 + rnd.nextInt(g)) + ">"; break;
          case 2: if (g > 1) rep = "$2-$1"; else if (g > 0) rep = "x$1"; break;
          case 3: if (g > 0) rep = "$" + g + "$1" + (g > 2 ? "$3" : ""); break;
          default: if (g > 0) rep = "$1"; break;
        }
        out.println(p + "\t" + rep);
      }
    } else {
      BufferedReader r = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
      for (String l; (l = r.readLine()) != null; ) {
        String[] p = l.split("\t", -1);
        String res;
        try { res = p[2].replaceAll(p[0], p[1]); } catch (RuntimeException e) { res = "ERR"; }
        out.println(res);
      }
    }
    out.flush();
  }
}
