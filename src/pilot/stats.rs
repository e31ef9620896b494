//! The statistics of a pilot: the bot arm against the managers arm (`booking-pilot.md` §4).
//! Pure functions of counts and durations that `bot report` and `bot pilot` read from the store;
//! nothing here touches the store, the clock or the terminal. Every input comes from data, so
//! nothing panics on any input (no clients, `x > n`, NaN or infinite times, absurd counts) and
//! no output is NaN: what a formula cannot give is `None`.
//!
//! - Proportions (booking conversion, qualified %) per client: Wilson 95 % intervals per arm;
//!   the difference in percentage points with a 95 % interval, Wald unpooled when every cell
//!   (x and n − x of either arm) is at least 10, else Newcombe's hybrid Wilson score interval;
//!   the p-value of the pooled two-proportion z-test, or of Fisher's exact test for small cells;
//!   the relative lift with its delta-method interval (GrowthBook's formula); and the chance
//!   that the bot converts better, P(p_bot > p_managers) under Beta(1 + x, 1 + n − x) per arm,
//!   by seeded Monte Carlo (same seed, same number).
//! - Response times: median, p90 (linear interpolation between order statistics, R's type 7 —
//!   what Excel's PERCENTILE.INC gives the owner), mean and the share within 60 s per arm; the
//!   Mann–Whitney p-value; the median difference with a seeded bootstrap percentile interval.
//! - Planning: the clients needed (§4.3's formula, unequal arms), the smallest detectable effect
//!   for a pilot's volume, and the SRM check on the arm sizes (alarm below p = 0.001, §4.4).
//!
//! **The verdict** is read on the conversion (primary) and qualified-% intervals widened for
//! the three KPIs the owner reads (Bonferroni: confidence 1 − 0.05/3):
//! «бот хуже» when either interval lies wholly below 0; «бот лучше» when conversion's or
//! qualified's lies wholly above 0 (and, by the first rule, neither lies below); otherwise
//! «пока не ясно», with how many more clients the pilot needs: `sample_size` at α = 0.05/3 and
//! 80 % power for the observed conversion difference when it is at least +1 pp, else for +5 pp
//! over the managers' conversion (20 % when the managers have no clients yet), minus the
//! clients already in, never below 0.
//!
//! statrs gives the distributions (Normal, ChiSquared, Beta, Hypergeometric's log-pmf). Two of
//! its tests are not used, for reasons checked against SciPy: 0.19.1's `fishers_exact` takes
//! `Hypergeometric::pmf`, which overflows to NaN or 0 once a binomial coefficient passes
//! f64::MAX (statrs issue #426; the fix is not in 0.19.1), so [5, 595 | 1200, 4200] gives 0.0
//! and [5, 9995 | 3000, 97000] a negative p; and its `mannwhitneyu` exact path returns 1.0
//! when the first sample is the lower one ([1, 2, 3, 4] vs [5, 6, 7, 8]: the exact p is
//! 2/70), checks comparability in O(n²) and sums t³ of ties in `usize`. Both tests are
//! written here in log space / f64, and the tests below pin them to SciPy's values.

use rand::distr::Distribution;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use statrs::distribution::{Beta, ChiSquared, ContinuousCDF, Discrete, Hypergeometric, Normal};

/// Below this p the arm sizes do not match the share: read no KPI (GrowthBook's default).
pub const SRM_ALARM: f64 = 0.001;

/// The confidence of every interval shown next to a KPI.
const CONFIDENCE: f64 = 0.95;
/// Bonferroni over the three KPIs the owner reads: what the verdict is judged on.
const CORRECTED_ALPHA: f64 = 0.05 / 3.0;
/// A cell (x or n − x of an arm) below this makes Wald and the z-test unreliable.
const SMALL_CELL: u64 = 10;
/// Monte Carlo draws of the chance that the bot is better: its standard error is ≤ 0.0036.
const BETA_DRAWS: u32 = 20_000;
/// Bootstrap resamples of the median difference.
const BOOTSTRAP_RESAMPLES: usize = 2_000;
/// The response time the owner counts as a quick answer.
const QUICK_ANSWER_SECONDS: f64 = 60.0;
/// The effect the verdict plans for when the pilot shows none worth planning for.
const PLANNED_EFFECT: f64 = 0.05;
/// The managers' conversion assumed before they have a client.
const ASSUMED_MANAGERS_CONVERSION: f64 = 0.20;
/// Tables beyond this many clients are not tested exactly: ln n! loses the precision the
/// exact test needs, and no pilot comes near.
const FISHER_MAX_TOTAL: u64 = 1 << 40;

/// `x` successes (booked, qualified) out of `n` units: clients, the unit of assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Rate {
    pub x: u64,
    pub n: u64,
}

impl Rate {
    /// x / n, or `None` when there are no clients or the counts are impossible.
    fn share(self) -> Option<f64> {
        (self.n > 0 && self.x <= self.n).then(|| self.x as f64 / self.n as f64)
    }
}

/// Wilson's score interval of a rate at a two-sided `confidence` (0.95 for 95 %), clamped to
/// [0, 1]. `None` when there are no clients, `x > n`, or the confidence is not in (0, 1).
pub fn wilson(rate: Rate, confidence: f64) -> Option<(f64, f64)> {
    let p = rate.share()?;
    let z = z_two_sided(confidence)?;
    let n = rate.n as f64;
    let z2 = z * z;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = z / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    let (low, high) = (finite(centre - half)?, finite(centre + half)?);
    // The bounds are exactly 0 at x = 0 and 1 at x = n; rounding would leave 1e-17.
    let low = if rate.x == 0 { 0.0 } else { low.max(0.0) };
    let high = if rate.x == rate.n { 1.0 } else { high.min(1.0) };
    Some((low, high))
}

/// One binary KPI of the pilot, bot against managers. Differences are in percentage points
/// (pp), the lift is relative (0.25 = the bot converts 25 % more often than the managers).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ProportionComparison {
    pub bot: Rate,
    pub managers: Rate,
    /// Wilson 95 %.
    pub bot_ci: Option<(f64, f64)>,
    pub managers_ci: Option<(f64, f64)>,
    /// (p_bot − p_managers) · 100.
    pub diff_pp: Option<f64>,
    /// 95 %: Newcombe's hybrid score interval when `small_cells`, else Wald unpooled.
    pub ci_low_pp: Option<f64>,
    pub ci_high_pp: Option<f64>,
    /// Fisher's exact test when `small_cells`, else the pooled two-proportion z-test.
    pub p_value: Option<f64>,
    /// Some cell (x or n − x of either arm) is below 10.
    pub small_cells: bool,
    /// (p_bot − p_managers) / p_managers; `None` when the managers' rate is 0.
    pub lift: Option<f64>,
    /// 95 %, delta method: σ² = σ²_C·p_B²/(p_C⁴·n_C) + σ²_B/(p_C²·n_B), σ² = p(1 − p).
    pub lift_ci: Option<(f64, f64)>,
    /// P(p_bot > p_managers) under Beta(1 + x, 1 + n − x) per arm, seeded Monte Carlo.
    pub chance_bot_better: Option<f64>,
    /// The difference's interval at confidence 1 − 0.05/3: what the verdict reads.
    pub corrected_low_pp: Option<f64>,
    pub corrected_high_pp: Option<f64>,
}

/// Compares one binary KPI of the two arms. `seed` makes the Monte Carlo chance reproducible.
pub fn compare_rates(bot: Rate, managers: Rate, seed: u64) -> ProportionComparison {
    let small_cells = [
        bot.x,
        bot.n.saturating_sub(bot.x),
        managers.x,
        managers.n.saturating_sub(managers.x),
    ]
    .iter()
    .any(|&cell| cell < SMALL_CELL);
    let both = bot.share().is_some() && managers.share().is_some();
    let interval = |confidence| diff_interval(bot, managers, small_cells, confidence);
    let (ci_low_pp, ci_high_pp) = unzip_pp(interval(CONFIDENCE));
    let (corrected_low_pp, corrected_high_pp) = unzip_pp(interval(1.0 - CORRECTED_ALPHA));
    let p_value = if !both {
        None
    } else if small_cells {
        fisher_exact(bot.x, bot.n - bot.x, managers.x, managers.n - managers.x)
    } else {
        pooled_z_p(bot, managers)
    };
    let lift = relative_lift(bot, managers);
    ProportionComparison {
        bot,
        managers,
        bot_ci: wilson(bot, CONFIDENCE),
        managers_ci: wilson(managers, CONFIDENCE),
        diff_pp: bot
            .share()
            .zip(managers.share())
            .and_then(|(b, m)| finite((b - m) * 100.0)),
        ci_low_pp,
        ci_high_pp,
        p_value,
        small_cells,
        lift: lift.map(|(lift, _)| lift),
        lift_ci: lift.map(|(_, ci)| ci),
        chance_bot_better: chance_bot_better(bot, managers, seed),
        corrected_low_pp,
        corrected_high_pp,
    }
}

/// The interval of p_bot − p_managers (fractions): Newcombe's hybrid score interval (his
/// method 10) from the two Wilson intervals when cells are small, else Wald unpooled.
fn diff_interval(
    bot: Rate,
    managers: Rate,
    small_cells: bool,
    confidence: f64,
) -> Option<(f64, f64)> {
    let (pb, pm) = (bot.share()?, managers.share()?);
    let d = pb - pm;
    let (low, high) = if small_cells {
        let (lb, ub) = wilson(bot, confidence)?;
        let (lm, um) = wilson(managers, confidence)?;
        (d - (pb - lb).hypot(um - pm), d + (ub - pb).hypot(pm - lm))
    } else {
        let z = z_two_sided(confidence)?;
        let se = (pb * (1.0 - pb) / bot.n as f64 + pm * (1.0 - pm) / managers.n as f64).sqrt();
        (d - z * se, d + z * se)
    };
    Some((finite(low)?, finite(high)?))
}

fn unzip_pp(interval: Option<(f64, f64)>) -> (Option<f64>, Option<f64>) {
    match interval {
        Some((low, high)) => (finite(low * 100.0), finite(high * 100.0)),
        None => (None, None),
    }
}

/// Two-sided p of the pooled two-proportion z-test (= the 2×2 χ² without continuity
/// correction). Both arms all-success or all-failure: no difference to test, p = 1.
fn pooled_z_p(bot: Rate, managers: Rate) -> Option<f64> {
    let (pb, pm) = (bot.share()?, managers.share()?);
    let (nb, nm) = (bot.n as f64, managers.n as f64);
    let pooled = (bot.x as f64 + managers.x as f64) / (nb + nm);
    let se = (pooled * (1.0 - pooled) * (1.0 / nb + 1.0 / nm)).sqrt();
    if se.is_nan() || se <= 0.0 {
        return Some(1.0);
    }
    let z = finite((pb - pm) / se)?;
    finite((2.0 * Normal::standard().sf(z.abs())).min(1.0))
}

/// Two-sided Fisher's exact test of the table [[a, b], [c, d]] (rows: arms; columns: success,
/// failure), as SciPy and R define it: the probability of all tables with the same margins that
/// are no more likely than this one (relative tolerance 1e-7). `a` is hypergeometric; its
/// log-pmf is walked from the mode by the exact ratio of neighbours, so huge tables neither
/// overflow nor lose the tail. Every cell has the same variance ≤ its expected count, so when
/// the observed table is not astronomically unlikely the walk is short.
fn fisher_exact(a: u64, b: u64, c: u64, d: u64) -> Option<f64> {
    let row1 = a.checked_add(b)?;
    let row2 = c.checked_add(d)?;
    let col1 = a.checked_add(c)?;
    let total = row1.checked_add(row2)?;
    if total > FISHER_MAX_TOTAL {
        return None;
    }
    let low = col1.saturating_sub(row2);
    let high = row1.min(col1);
    if low >= high {
        return Some(1.0);
    }
    let mode = ((u128::from(col1) + 1) * (u128::from(row1) + 1) / (u128::from(total) + 2))
        .clamp(u128::from(low), u128::from(high));
    let mode = u64::try_from(mode).ok()?;
    // A first, coarse look (ln n! to about 1e-3 here): astronomically unlikely tables are 0.
    let distribution = Hypergeometric::new(total, row1, col1).ok()?;
    if distribution.ln_pmf(a) - distribution.ln_pmf(mode) < -1000.0 {
        return Some(0.0);
    }
    // ln(pmf(k + 1) / pmf(k)); every count is exact in f64 below FISHER_MAX_TOTAL.
    let (r1, r2, c1) = (row1 as f64, row2 as f64, col1 as f64);
    let step_up = |k: u64| {
        let k = k as f64;
        ((r1 - k) * (c1 - k)).ln() - ((k + 1.0) * (r2 - c1 + k + 1.0)).ln()
    };
    // The observed table's log-probability relative to the mode's.
    let mut observed = 0.0;
    let mut k = mode;
    while k < a {
        observed += step_up(k);
        k += 1;
    }
    while k > a {
        observed -= step_up(k - 1);
        k -= 1;
    }
    if observed >= -1e-7 {
        return Some(1.0);
    }
    let counts = |relative: f64| relative <= observed + 1e-7;
    let negligible = observed - 40.0;
    let (mut all, mut as_extreme) = (1.0, 0.0);
    let (mut relative, mut k) = (0.0, mode);
    while k < high && relative >= negligible {
        relative += step_up(k);
        k += 1;
        let term = relative.exp();
        all += term;
        if counts(relative) {
            as_extreme += term;
        }
    }
    let (mut relative, mut k) = (0.0, mode);
    while k > low && relative >= negligible {
        relative -= step_up(k - 1);
        k -= 1;
        let term = relative.exp();
        all += term;
        if counts(relative) {
            as_extreme += term;
        }
    }
    finite((as_extreme / all).clamp(0.0, 1.0))
}

/// The relative lift d / p_managers and its 95 % delta-method interval (§4.1, GrowthBook).
fn relative_lift(bot: Rate, managers: Rate) -> Option<(f64, (f64, f64))> {
    let (pb, pm) = (bot.share()?, managers.share()?);
    if pm <= 0.0 {
        return None;
    }
    let (nb, nm) = (bot.n as f64, managers.n as f64);
    let lift = finite((pb - pm) / pm)?;
    let variance = pm * (1.0 - pm) * pb * pb / (pm.powi(4) * nm) + pb * (1.0 - pb) / (pm * pm * nb);
    let half = finite(z_two_sided(CONFIDENCE)? * variance.sqrt())?;
    Some((lift, (finite(lift - half)?, finite(lift + half)?)))
}

/// P(p_bot > p_managers) with a uniform prior per arm: the share of `BETA_DRAWS` seeded draws
/// from Beta(1 + x, 1 + n − x) in which the bot's rate is the higher. `None` without clients.
fn chance_bot_better(bot: Rate, managers: Rate, seed: u64) -> Option<f64> {
    let posterior = |rate: Rate| {
        rate.share()?;
        Beta::new(1.0 + rate.x as f64, 1.0 + (rate.n - rate.x) as f64).ok()
    };
    let (bot, managers) = (posterior(bot)?, posterior(managers)?);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let wins = (0..BETA_DRAWS)
        .filter(|_| bot.sample(&mut rng) > managers.sample(&mut rng))
        .count();
    finite(wins as f64 / f64::from(BETA_DRAWS))
}

/// The p-value of the χ² goodness of fit (df 1) of the arm sizes to their expected split:
/// the sample ratio mismatch check, alarming below [`SRM_ALARM`]. The expected values may be
/// counts or shares: they are scaled to the observed total. `None` when an expected value is
/// 0, there are no clients, or an input is negative or not finite.
pub fn srm_p(
    bot_observed: f64,
    managers_observed: f64,
    bot_expected: f64,
    managers_expected: f64,
) -> Option<f64> {
    let inputs = [
        bot_observed,
        managers_observed,
        bot_expected,
        managers_expected,
    ];
    if inputs.iter().any(|v| !v.is_finite() || *v < 0.0) {
        return None;
    }
    if bot_expected <= 0.0 || managers_expected <= 0.0 {
        return None;
    }
    let observed_total = finite(bot_observed + managers_observed)?;
    let expected_total = finite(bot_expected + managers_expected)?;
    if observed_total <= 0.0 {
        return None;
    }
    let statistic = [
        (bot_observed, bot_expected),
        (managers_observed, managers_expected),
    ]
    .iter()
    .map(|&(observed, expected)| {
        let expected = observed_total * (expected / expected_total);
        (observed - expected).powi(2) / expected
    })
    .sum::<f64>();
    if statistic.is_nan() {
        return None;
    }
    let chi_squared = ChiSquared::new(1.0).ok()?;
    finite(chi_squared.sf(statistic).clamp(0.0, 1.0))
}

/// Response times of one arm, in seconds. Values that are not finite are left out of all of
/// them, `n` included.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TimeSummary {
    pub n: usize,
    pub median: Option<f64>,
    pub p90: Option<f64>,
    pub mean: Option<f64>,
    /// The share (0..1) answered within 60 s.
    pub within_60s: Option<f64>,
}

/// Median, p90 (type 7), mean and the share within 60 s of the finite values of `seconds`.
pub fn summarize(seconds: &[f64]) -> TimeSummary {
    let mut sorted = finite_values(seconds);
    sorted.sort_unstable_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return TimeSummary {
            n,
            median: None,
            p90: None,
            mean: None,
            within_60s: None,
        };
    }
    let count = n as f64;
    // Each term divided first, so the sum of huge times cannot overflow.
    let mean = sorted.iter().map(|t| t / count).sum::<f64>();
    let quick = sorted
        .iter()
        .filter(|&&t| t <= QUICK_ANSWER_SECONDS)
        .count();
    TimeSummary {
        n,
        median: quantile_sorted(&sorted, 0.5),
        p90: quantile_sorted(&sorted, 0.9),
        mean: finite(mean),
        within_60s: Some(quick as f64 / count),
    }
}

/// Response times of the two arms. Differences are bot − managers, in seconds.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TimeComparison {
    pub bot: TimeSummary,
    pub managers: TimeSummary,
    /// Two-sided Mann–Whitney U: exact without ties when both arms have under 50 values (as
    /// R's `wilcox.test`), else the normal approximation with tie and continuity corrections.
    pub mann_whitney_p: Option<f64>,
    pub median_diff: Option<f64>,
    /// Bootstrap 95 % percentile interval: 2 000 resamples within each arm, seeded.
    pub median_diff_ci: Option<(f64, f64)>,
}

/// Compares the response times of the arms; `seed` makes the bootstrap reproducible.
pub fn compare_times(bot: &[f64], managers: &[f64], seed: u64) -> TimeComparison {
    let (bot_values, managers_values) = (finite_values(bot), finite_values(managers));
    let (bot, managers) = (summarize(&bot_values), summarize(&managers_values));
    let median_diff = bot
        .median
        .zip(managers.median)
        .and_then(|(b, m)| finite(b - m));
    TimeComparison {
        mann_whitney_p: mann_whitney_p(&bot_values, &managers_values),
        median_diff,
        median_diff_ci: median_diff_ci(&bot_values, &managers_values, seed),
        bot,
        managers,
    }
}

/// Two-sided Mann–Whitney p of two samples of finite values (§4.2): average ranks for ties,
/// U_bot = R_bot − n_bot(n_bot + 1)/2.
fn mann_whitney_p(bot: &[f64], managers: &[f64]) -> Option<f64> {
    let (n1, n2) = (bot.len(), managers.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let mut pooled: Vec<(f64, bool)> = bot
        .iter()
        .map(|&t| (t, true))
        .chain(managers.iter().map(|&t| (t, false)))
        .collect();
    pooled.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let (mut bot_rank_sum, mut tie_term, mut ties) = (0.0, 0.0, false);
    let mut start = 0;
    while start < pooled.len() {
        let mut end = start + 1;
        while end < pooled.len() && pooled[end].0 == pooled[start].0 {
            end += 1;
        }
        // Ranks start + 1 ..= end share their average.
        let rank = (start + 1 + end) as f64 / 2.0;
        let group = (end - start) as f64;
        if end - start > 1 {
            ties = true;
            tie_term += group * group * group - group;
        }
        let bots = pooled[start..end]
            .iter()
            .filter(|(_, is_bot)| *is_bot)
            .count();
        bot_rank_sum += rank * bots as f64;
        start = end;
    }
    let (m, n) = (n1 as f64, n2 as f64);
    let u = bot_rank_sum - m * (m + 1.0) / 2.0;
    if !ties && n1 < 50 && n2 < 50 {
        // Without ties U is a whole number in 0..=n1·n2.
        return mann_whitney_exact_p(u.round() as usize, n1, n2);
    }
    let total = m + n;
    let variance = m * n / 12.0 * ((total + 1.0) - tie_term / (total * (total - 1.0)));
    if variance.is_nan() || variance <= 0.0 {
        return Some(1.0); // every value tied: nothing tells the arms apart
    }
    let z = ((u - m * n / 2.0).abs() - 0.5) / variance.sqrt();
    finite((2.0 * Normal::standard().sf(z)).clamp(0.0, 1.0))
}

/// The exact two-sided p of U without ties: 2 · min(P(U ≤ u), P(U ≥ u)), capped at 1, from
/// the count of orderings with each U: c(i, j, s) = c(i − 1, j, s − j) + c(i, j − 1, s) (the
/// largest value is a bot one, beating all j managers' values, or a managers' one).
fn mann_whitney_exact_p(u: usize, n1: usize, n2: usize) -> Option<f64> {
    let size = n1 * n2 + 1;
    // counts[j][s] for i bot values and j managers' values; i = 0: U is 0.
    let mut counts: Vec<Vec<f64>> = vec![vec![0.0; size]; n2 + 1];
    for row in &mut counts {
        row[0] = 1.0;
    }
    for i in 1..=n1 {
        let mut next: Vec<Vec<f64>> = vec![vec![0.0; size]; n2 + 1];
        next[0][0] = 1.0;
        for j in 1..=n2 {
            for s in 0..=i * j {
                let bot_largest = if s >= j { counts[j][s - j] } else { 0.0 };
                next[j][s] = bot_largest + next[j - 1][s];
            }
        }
        counts = next;
    }
    let distribution = counts.get(n2)?;
    let all: f64 = distribution.iter().sum();
    let at_most = distribution.get(..=u)?.iter().sum::<f64>() / all;
    let at_least = distribution.get(u..)?.iter().sum::<f64>() / all;
    finite((2.0 * at_most.min(at_least)).min(1.0))
}

/// The 2.5 and 97.5 percentiles of median(bot*) − median(managers*) over resamples with
/// replacement within each arm.
fn median_diff_ci(bot: &[f64], managers: &[f64], seed: u64) -> Option<(f64, f64)> {
    if bot.is_empty() || managers.is_empty() {
        return None;
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut resample = |values: &[f64], buffer: &mut Vec<f64>| {
        buffer.clear();
        buffer.extend((0..values.len()).map(|_| values[rng.random_range(0..values.len())]));
        quantile_in_place(buffer, 0.5)
    };
    let (mut bot_buffer, mut managers_buffer) = (Vec::new(), Vec::new());
    let mut diffs = Vec::with_capacity(BOOTSTRAP_RESAMPLES);
    for _ in 0..BOOTSTRAP_RESAMPLES {
        let b = resample(bot, &mut bot_buffer)?;
        let m = resample(managers, &mut managers_buffer)?;
        diffs.push(finite(b - m)?);
    }
    diffs.sort_unstable_by(f64::total_cmp);
    Some((
        quantile_sorted(&diffs, 0.025)?,
        quantile_sorted(&diffs, 0.975)?,
    ))
}

/// The clients each arm needs to detect p_managers → p_bot with a two-sided test at `alpha`
/// and `power` when the bot gets `share` (0..1) of new clients (§4.3, k = n_managers/n_bot):
/// n_bot = [z(1−α/2)·√(p̄(1−p̄)(1+1/k)) + z(power)·√(p_B(1−p_B) + p_C(1−p_C)/k)]² / (p_B−p_C)²,
/// p̄ = (p_B + k·p_C)/(1 + k), rounded up, and n_managers = k·n_bot rounded up (the table's
/// 591 / 5 319 at 10 %). `None` when the rates are equal or outside [0, 1], `share`, `alpha`
/// or `power` is outside (0, 1), or the answer is not a count.
pub fn sample_size(
    p_managers: f64,
    p_bot: f64,
    share: f64,
    alpha: f64,
    power: f64,
) -> Option<(u64, u64)> {
    let rate = |p: f64| (0.0..=1.0).contains(&p);
    let open = |v: f64| v > 0.0 && v < 1.0;
    if !rate(p_managers) || !rate(p_bot) || p_bot == p_managers {
        return None;
    }
    if !open(share) || !open(alpha) || !open(power) {
        return None;
    }
    let k = (1.0 - share) / share;
    let pooled = (p_bot + k * p_managers) / (1.0 + k);
    let z_alpha = z_two_sided(1.0 - alpha)?;
    let z_power = finite(Normal::standard().inverse_cdf(power))?;
    let root = z_alpha * (pooled * (1.0 - pooled) * (1.0 + 1.0 / k)).sqrt()
        + z_power * (p_bot * (1.0 - p_bot) + p_managers * (1.0 - p_managers) / k).sqrt();
    if root.is_nan() || root <= 0.0 {
        return None;
    }
    let n_bot = round_up_count(root * root / (p_bot - p_managers).powi(2))?;
    let n_managers = round_up_count(k * n_bot as f64)?;
    Some((n_bot, n_managers))
}

/// The smallest increase of the bot's rate over `p_managers`, in pp, that a pilot of
/// `total_clients` (both arms) detects at `alpha` and `power`: the d at which
/// `sample_size(p, p + d)` fits the clients, by bisection. `None` when even p → 100 % does
/// not fit, or the inputs are out of range.
pub fn mde_pp(
    total_clients: u64,
    share: f64,
    p_managers: f64,
    alpha: f64,
    power: f64,
) -> Option<f64> {
    if !(0.0..1.0).contains(&p_managers) {
        return None;
    }
    let fits = |d: f64| {
        sample_size(p_managers, (p_managers + d).min(1.0), share, alpha, power)
            .and_then(|(bot, managers)| bot.checked_add(managers))
            .is_some_and(|needed| needed <= total_clients)
    };
    let (mut low, mut high) = (0.0, 1.0 - p_managers);
    if !fits(high) {
        return None;
    }
    for _ in 0..60 {
        let middle = (low + high) / 2.0;
        if fits(middle) {
            high = middle;
        } else {
            low = middle;
        }
    }
    finite(high * 100.0)
}

/// What the owner is told about the pilot (the rule is in the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum Verdict {
    Better,
    Worse,
    /// `more_clients`: how many more new clients (both arms) the pilot needs; `None` when that
    /// cannot be computed.
    Unclear {
        more_clients: Option<u64>,
    },
}

/// The verdict on booking conversion (primary) and qualified %, judged on their corrected
/// intervals; `share` is the bot's share of new clients as a fraction (0.1 for `--share 10`).
pub fn verdict(
    conversion: &ProportionComparison,
    qualified: &ProportionComparison,
    share: f64,
) -> Verdict {
    let corrected = |c: &ProportionComparison| c.corrected_low_pp.zip(c.corrected_high_pp);
    let below = |c| corrected(c).is_some_and(|(_, high)| high < 0.0);
    let above = |c| corrected(c).is_some_and(|(low, _)| low > 0.0);
    if below(conversion) || below(qualified) {
        Verdict::Worse
    } else if above(conversion) || above(qualified) {
        Verdict::Better
    } else {
        Verdict::Unclear {
            more_clients: more_clients(conversion, share),
        }
    }
}

/// The clients still to come before conversion's corrected interval can clear 0.
fn more_clients(conversion: &ProportionComparison, share: f64) -> Option<u64> {
    let p_managers = conversion
        .managers
        .share()
        .unwrap_or(ASSUMED_MANAGERS_CONVERSION);
    let effect = conversion
        .diff_pp
        .filter(|&d| d >= 1.0)
        .map_or(PLANNED_EFFECT, |d| d / 100.0);
    let (bot, managers) =
        sample_size(p_managers, p_managers + effect, share, CORRECTED_ALPHA, 0.8)?;
    let needed = bot.checked_add(managers)?;
    let already = conversion.bot.n.saturating_add(conversion.managers.n);
    Some(needed.saturating_sub(already))
}

/// The verdict in the owner's words: «бот лучше», «бот хуже», «пока не ясно: нужно ещё
/// ~5 910 клиентов», or «пока не ясно» when the count is unknown or already reached.
pub fn verdict_text(v: &Verdict) -> String {
    match v {
        Verdict::Better => "бот лучше".to_owned(),
        Verdict::Worse => "бот хуже".to_owned(),
        Verdict::Unclear {
            more_clients: Some(n),
        } if *n > 0 => format!(
            "пока не ясно: нужно ещё ~{} {}",
            crate::engine::reply::fmt_count(*n),
            clients_word(*n)
        ),
        Verdict::Unclear { .. } => "пока не ясно".to_owned(),
    }
}

/// «клиент» agreeing with a count: 1 клиент, 2 клиента, 5 клиентов, 11 клиентов, 21 клиент.
fn clients_word(n: u64) -> &'static str {
    match (n % 10, n % 100) {
        (_, 11..=14) => "клиентов",
        (1, _) => "клиент",
        (2..=4, _) => "клиента",
        _ => "клиентов",
    }
}

/// The standard normal quantile of a two-sided `confidence` in (0, 1).
fn z_two_sided(confidence: f64) -> Option<f64> {
    if !(confidence > 0.0 && confidence < 1.0) {
        return None;
    }
    finite(Normal::standard().inverse_cdf(1.0 - (1.0 - confidence) / 2.0))
}

/// The q-quantile of sorted finite values, R's type 7: linear between order statistics.
fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let position = q.clamp(0.0, 1.0) * last as f64;
    let below = position.floor() as usize;
    let fraction = position - below as f64;
    let low = *sorted.get(below)?;
    let high = *sorted.get((below + 1).min(last))?;
    // Weighted, not low + (high − low)·f: the difference of two huge times can overflow.
    finite(low * (1.0 - fraction) + high * fraction)
}

/// `quantile_sorted` of unsorted values, reordering them (O(n)).
fn quantile_in_place(values: &mut [f64], q: f64) -> Option<f64> {
    let last = values.len().checked_sub(1)?;
    let position = q.clamp(0.0, 1.0) * last as f64;
    let below = position.floor() as usize;
    let fraction = position - below as f64;
    let (_, &mut low, above) = values.select_nth_unstable_by(below, f64::total_cmp);
    let high = above.iter().copied().min_by(f64::total_cmp).unwrap_or(low);
    finite(low * (1.0 - fraction) + high * fraction)
}

fn finite_values(values: &[f64]) -> Vec<f64> {
    values.iter().copied().filter(|t| t.is_finite()).collect()
}

fn finite(value: f64) -> Option<f64> {
    value.is_finite().then_some(value)
}

/// Rounds a computed count up; a product like 9 · 591 computed as 5 319.000000000001 is 5 319.
fn round_up_count(value: f64) -> Option<u64> {
    if !(0.0..=1e18).contains(&value) {
        return None;
    }
    Some(((value - value * 1e-12).ceil() as u64).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use statrs::distribution::Binomial;

    /// Asserts |actual − expected| ≤ tolerance, naming the quantity.
    #[track_caller]
    fn assert_close(actual: Option<f64>, expected: f64, tolerance: f64, what: &str) {
        let actual = actual.unwrap_or_else(|| panic!("{what}: None, expected {expected}"));
        assert!(
            (actual - expected).abs() <= tolerance,
            "{what}: {actual}, expected {expected} ± {tolerance}"
        );
    }

    #[test]
    #[should_panic(expected = "expected 0.5 ± 0.01")]
    fn assert_close_rejects_a_wrong_value() {
        assert_close(Some(0.52), 0.5, 0.01, "a share");
    }

    #[test]
    #[should_panic(expected = "None, expected")]
    fn assert_close_rejects_a_missing_value() {
        assert_close(None, 0.5, 0.01, "a share");
    }

    fn rate(x: u64, n: u64) -> Rate {
        Rate { x, n }
    }

    /// 81/263 at 95 %: the textbook Wilson example; [0.25529, 0.36621] by the score formula
    /// in Python and by statsmodels `proportion_confint(81, 263, method="wilson")`.
    #[test]
    fn wilson_matches_the_classic_81_of_263() {
        let (low, high) = wilson(rate(81, 263), 0.95).unwrap();
        assert_close(Some(low), 0.255_289, 1e-5, "low");
        assert_close(Some(high), 0.366_210, 1e-5, "high");
    }

    #[test]
    fn wilson_is_none_without_clients_or_a_confidence_and_stays_in_0_1() {
        assert_eq!(wilson(rate(0, 0), 0.95), None);
        assert_eq!(wilson(rate(5, 3), 0.95), None, "x > n");
        for confidence in [0.0, 1.0, -0.5, 1.5, f64::NAN] {
            assert_eq!(wilson(rate(5, 10), confidence), None, "{confidence}");
        }
        let (low, high) = wilson(rate(0, 10), 0.95).unwrap();
        assert_eq!(low, 0.0);
        assert!(high > 0.0 && high < 1.0);
        let (low, high) = wilson(rate(10, 10), 0.95).unwrap();
        assert!(low > 0.0 && low < 1.0);
        assert_eq!(high, 1.0);
    }

    /// Newcombe (1998), Statistics in Medicine 17:873, example (a): 56/70 − 48/80, his method 10
    /// (hybrid score) gives [0.0524, 0.3339]; statsmodels `confint_proportions_2indep(...,
    /// method="newcomb")` agrees ([0.052431, 0.333873]; at α = 0.05/3 [0.019228, 0.360832]).
    #[test]
    fn newcombe_matches_newcombes_own_example() {
        let (low, high) = diff_interval(rate(56, 70), rate(48, 80), true, 0.95).unwrap();
        assert_close(Some(low), 0.052_431, 1e-5, "low");
        assert_close(Some(high), 0.333_873, 1e-5, "high");
        let corrected = diff_interval(rate(56, 70), rate(48, 80), true, 1.0 - 0.05 / 3.0);
        let (low, high) = corrected.unwrap();
        assert_close(Some(low), 0.019_228, 1e-5, "corrected low");
        assert_close(Some(high), 0.360_832, 1e-5, "corrected high");
    }

    /// Small cells switch the interval to Newcombe and the test to Fisher: 3/20 vs 40/200.
    /// statsmodels (method="newcomb"): [−0.165044, 0.166174], at α = 0.05/3
    /// [−0.181624, 0.220137]; SciPy `fisher_exact([[3, 17], [40, 160]])`: 0.771325.
    #[test]
    fn small_cells_use_newcombe_and_fisher() {
        let c = compare_rates(rate(3, 20), rate(40, 200), 1);
        assert!(c.small_cells);
        assert_close(c.diff_pp, -5.0, 1e-9, "d");
        assert_close(c.ci_low_pp, -16.5044, 1e-3, "low");
        assert_close(c.ci_high_pp, 16.6174, 1e-3, "high");
        assert_close(c.corrected_low_pp, -18.1624, 1e-3, "corrected low");
        assert_close(c.corrected_high_pp, 22.0137, 1e-3, "corrected high");
        assert_close(c.p_value, 0.771_325, 1e-6, "Fisher p");
    }

    /// `booking-pilot.md` §4.1: C 180/900 vs B 25/100 → d = +5.0 pp, 95 % [−3.9, +13.9] pp
    /// (Wald), p = 0.24, P(B > C) ≈ 0.89. Finer digits recomputed in Python: Wald
    /// [−3.8801, 13.8801], pooled z p = 0.240002 (= χ² without correction, SciPy), P(B > C) =
    /// 0.88895 by integrating Beta(26, 76)'s density times Beta(181, 721)'s CDF (scipy quad);
    /// the corrected interval (α = 0.05/3, statsmodels wald) [−5.8465, 15.8465]; the lift 0.25
    /// with the delta-method interval [−0.204692, 0.704692] from §4.1's σ² formula.
    #[test]
    fn the_references_worked_example() {
        let c = compare_rates(rate(25, 100), rate(180, 900), 7);
        assert!(!c.small_cells);
        assert_close(c.diff_pp, 5.0, 1e-9, "d");
        assert_close(c.ci_low_pp, -3.9, 0.05, "low");
        assert_close(c.ci_high_pp, 13.9, 0.05, "high");
        assert_close(c.ci_low_pp, -3.880_12, 1e-4, "low, finer");
        assert_close(c.ci_high_pp, 13.880_12, 1e-4, "high, finer");
        assert_close(c.p_value, 0.24, 0.0005, "p");
        assert_close(c.chance_bot_better, 0.889, 0.01, "P(B > C)");
        assert_close(c.corrected_low_pp, -5.846_55, 1e-4, "corrected low");
        assert_close(c.corrected_high_pp, 15.846_55, 1e-4, "corrected high");
        assert_close(c.lift, 0.25, 1e-12, "lift");
        let (low, high) = c.lift_ci.unwrap();
        assert_close(Some(low), -0.204_692, 1e-5, "lift low");
        assert_close(Some(high), 0.704_692, 1e-5, "lift high");
        let bot_ci = c.bot_ci.unwrap();
        assert_eq!(Some(bot_ci), wilson(rate(25, 100), 0.95));
        assert_eq!(c.managers_ci, wilson(rate(180, 900), 0.95));
    }

    #[test]
    fn the_chance_is_reproducible_by_seed() {
        let first = compare_rates(rate(25, 100), rate(180, 900), 42).chance_bot_better;
        let again = compare_rates(rate(25, 100), rate(180, 900), 42).chance_bot_better;
        let other = compare_rates(rate(25, 100), rate(180, 900), 43).chance_bot_better;
        assert_eq!(first, again);
        assert_ne!(first, other, "another seed, other draws");
        assert_close(
            other,
            first.unwrap(),
            0.015,
            "another seed, the same answer",
        );
        // The arms swapped: the complement.
        let swapped = compare_rates(rate(180, 900), rate(25, 100), 42).chance_bot_better;
        assert_close(swapped, 1.0 - 0.889, 0.01, "P(C > B)");
    }

    #[test]
    fn no_clients_in_an_arm_leaves_the_comparison_undefined() {
        let c = compare_rates(rate(0, 0), rate(10, 50), 1);
        assert_eq!(c.bot_ci, None);
        assert!(c.managers_ci.is_some());
        assert_eq!((c.diff_pp, c.ci_low_pp, c.ci_high_pp), (None, None, None));
        assert_eq!((c.p_value, c.lift, c.lift_ci), (None, None, None));
        assert_eq!(c.chance_bot_better, None);
        assert_eq!((c.corrected_low_pp, c.corrected_high_pp), (None, None));
        let impossible = compare_rates(rate(5, 3), rate(10, 50), 1);
        assert_eq!(impossible.diff_pp, None);
        // Managers at 0 %: the lift is undefined, the rest is not.
        let c = compare_rates(rate(3, 50), rate(0, 50), 1);
        assert_eq!((c.lift, c.lift_ci), (None, None));
        assert!(c.diff_pp.is_some() && c.p_value.is_some());
    }

    /// Two-sided Fisher by hand from hypergeometric terms. [[1, 9], [11, 3]]: margins 10/14 and
    /// 12/12 of 24, P(a) = C(10, a)·C(14, 12 − a)/C(24, 12) with C(24, 12) = 2 704 156; the
    /// tables no more likely than a = 1 (3 640) are a = 0 (91), 1 (3 640), 9 (3 640), 10 (91):
    /// p = 7 462/2 704 156 = 0.00275946 (Wikipedia's dieting example; SciPy: 0.0027594562).
    /// [[3, 1], [1, 3]], the lady tasting tea: terms 1, 16, 36, 16, 1 of 70 → p = 34/70.
    #[test]
    fn fisher_matches_the_hypergeometric_sum_by_hand() {
        assert_close(
            fisher_exact(1, 9, 11, 3),
            7462.0 / 2_704_156.0,
            1e-12,
            "[[1, 9], [11, 3]]",
        );
        assert_close(fisher_exact(3, 1, 1, 3), 34.0 / 70.0, 1e-12, "tea");
        // Every layout of a table gives the same p.
        for (a, b, c, d) in [(9, 1, 3, 11), (1, 11, 9, 3), (3, 11, 9, 1)] {
            assert_close(
                fisher_exact(a, b, c, d),
                7462.0 / 2_704_156.0,
                1e-12,
                "layout",
            );
        }
    }

    /// SciPy 1.17 `fisher_exact`, including large tables where statrs 0.19.1's
    /// `fishers_exact` returns 0.0 and −3.2e-11 (its pmf overflows).
    #[test]
    fn fisher_matches_scipy_on_small_and_large_tables() {
        for ((a, b, c, d), expected) in [
            ((3, 0, 0, 3), 0.1),
            ((0, 10, 5, 5), 0.032_507_739_938_080_496),
            ((2, 3, 7, 1), 0.216_783_216_783_216_77),
            ((5, 95, 200, 700), 1.060_698_026_381_951_5e-5),
            ((2, 48, 40, 160), 0.005_275_387_450_712_304),
            ((8, 52, 100, 440), 0.379_190_221_328_710_6),
            ((5, 595, 1200, 4200), 2.355_356_561_840_693_2e-53),
            ((5, 9995, 3000, 97000), 2.275_916_644_287_375_4e-116),
        ] {
            let p = fisher_exact(a, b, c, d).unwrap();
            assert!(
                (p - expected).abs() <= 1e-6 * expected,
                "[[{a}, {b}], [{c}, {d}]]: {p}, SciPy {expected}"
            );
        }
        assert_eq!(fisher_exact(0, 0, 0, 0), Some(1.0));
        assert_eq!(fisher_exact(0, 10, 0, 20), Some(1.0));
        assert_eq!(fisher_exact(1, 5_000_000, 700_000, 0), Some(0.0));
    }

    /// Exact Mann–Whitney by hand. [1, 2, 4] vs [3, 5, 6, 7]: bot ranks 1, 2, 4, U = 7 − 6 = 1;
    /// of the C(7, 3) = 35 rank sets, U ≤ 1 for {1, 2, 3} and {1, 2, 4}: p = 2 · 2/35 = 4/35.
    /// [1, 2, 3, 4] vs [5, 6, 7, 8]: U = 0, only 1 of C(8, 4) = 70 sets: p = 2/70 (statrs 0.19.1
    /// returns 1.0 here). [12, 15, 30, 45, 60, 200] vs [40, 90, 95, 120, 300, 600, 900]:
    /// SciPy `mannwhitneyu(method="exact")` gives U = 6, p = 0.034965.
    #[test]
    fn mann_whitney_exact_matches_counts_by_hand() {
        assert_close(
            mann_whitney_p(&[1.0, 2.0, 4.0], &[3.0, 5.0, 6.0, 7.0]),
            4.0 / 35.0,
            1e-12,
            "3 vs 4",
        );
        assert_close(
            mann_whitney_p(&[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0, 7.0, 8.0]),
            2.0 / 70.0,
            1e-12,
            "4 vs 4, bot faster",
        );
        assert_close(
            mann_whitney_p(&[5.0, 6.0, 7.0, 8.0], &[1.0, 2.0, 3.0, 4.0]),
            2.0 / 70.0,
            1e-12,
            "4 vs 4, bot slower",
        );
        let bot = [12.0, 15.0, 30.0, 45.0, 60.0, 200.0];
        let managers = [40.0, 90.0, 95.0, 120.0, 300.0, 600.0, 900.0];
        assert_close(mann_whitney_p(&bot, &managers), 0.034_965, 1e-6, "6 vs 7");
        assert_close(mann_whitney_p(&managers, &bot), 0.034_965, 1e-6, "7 vs 6");
        assert_eq!(mann_whitney_p(&[], &[1.0]), None);
    }

    /// With ties: normal approximation, tie-corrected variance and continuity correction.
    /// By hand for [1, 2, 2, 3, 5, 5, 5, 8, 9, 10, 11, 11] vs [3, 4, 4, 6, 7, 9, 12, 13, 13,
    /// 14, 15, 20, 22]: R_bot = 116, U = 116 − 78 = 38, μ = 78, tie groups of 2, 2, 2, 3, 2,
    /// 2, 2 → Σ(t³ − t) = 60, σ² = 156/12 · (26 − 60/600) = 336.7, z = (40 − 0.5)/18.3494 =
    /// 2.15266, p = 0.031345 (SciPy asymptotic, use_continuity=True: U = 38, p = 0.0313454).
    #[test]
    fn mann_whitney_with_ties_uses_the_corrected_normal_approximation() {
        let bot = [
            1.0, 2.0, 2.0, 3.0, 5.0, 5.0, 5.0, 8.0, 9.0, 10.0, 11.0, 11.0,
        ];
        let managers = [
            3.0, 4.0, 4.0, 6.0, 7.0, 9.0, 12.0, 13.0, 13.0, 14.0, 15.0, 20.0, 22.0,
        ];
        assert_close(mann_whitney_p(&bot, &managers), 0.031_345_4, 1e-6, "ties");
        assert_eq!(
            mann_whitney_p(&[5.0; 60], &[5.0; 70]),
            Some(1.0),
            "all tied"
        );
    }

    /// From 50 values in an arm (or with ties) the normal approximation takes over from the
    /// exact count; at the switch the two agree within a third in log p for clearly shifted
    /// samples (49 vs 49 exact, 50 vs 49 approximate).
    #[test]
    fn mann_whitney_switches_to_the_approximation_smoothly() {
        let bot: Vec<f64> = (0..49).map(f64::from).collect();
        let managers: Vec<f64> = (0..49).map(|i| f64::from(i) + 10.5).collect();
        let exact = mann_whitney_p(&bot, &managers).unwrap();
        let mut bigger_bot = bot.clone();
        bigger_bot.push(-1.0);
        let approximate = mann_whitney_p(&bigger_bot, &managers).unwrap();
        assert!(
            (exact.ln() - approximate.ln()).abs() < 0.3,
            "exact {exact} vs approximate {approximate}"
        );
    }

    /// numpy: median([1..10]) = 5.5, quantile(0.9) = 9.1 (type 7); [12, 30, 45, 90, 600, 7,
    /// 3600]: median 45, p90 1800, mean 626.2857, within 60 s 4/7.
    #[test]
    fn summaries_use_type_7_quantiles() {
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        let s = summarize(&ten);
        assert_eq!(s.n, 10);
        assert_close(s.median, 5.5, 1e-12, "median");
        assert_close(s.p90, 9.1, 1e-12, "p90");
        assert_close(s.mean, 5.5, 1e-12, "mean");
        assert_close(s.within_60s, 1.0, 0.0, "within 60 s");
        let s = summarize(&[12.0, 30.0, 45.0, 90.0, 600.0, 7.0, 3600.0, f64::NAN]);
        assert_eq!(s.n, 7, "NaN left out");
        assert_close(s.median, 45.0, 1e-12, "median");
        assert_close(s.p90, 1800.0, 1e-9, "p90");
        assert_close(s.mean, 626.285_714, 1e-5, "mean");
        assert_close(s.within_60s, 4.0 / 7.0, 1e-12, "within 60 s");
        let empty = summarize(&[f64::INFINITY]);
        assert_eq!(
            empty,
            TimeSummary {
                n: 0,
                median: None,
                p90: None,
                mean: None,
                within_60s: None
            }
        );
    }

    #[test]
    fn the_bootstrap_is_seeded_and_brackets_the_median_difference() {
        let bot: Vec<f64> = (0..40).map(|i| 2.0 + f64::from(i % 7)).collect();
        let managers: Vec<f64> = (0..60).map(|i| 120.0 + f64::from(i * 13 % 400)).collect();
        let c = compare_times(&bot, &managers, 5);
        assert_eq!(c, compare_times(&bot, &managers, 5));
        let (low, high) = c.median_diff_ci.unwrap();
        let diff = c.median_diff.unwrap();
        assert!(low <= diff && diff <= high, "{low} ≤ {diff} ≤ {high}");
        assert!(high < 0.0, "the bot is clearly faster: {high}");
        assert!(c.mann_whitney_p.unwrap() < 1e-10);
        assert_ne!(
            compare_times(&bot, &managers, 6).median_diff_ci,
            c.median_diff_ci,
            "another seed, other resamples"
        );
        let none = compare_times(&[], &managers, 5);
        assert_eq!((none.median_diff, none.median_diff_ci), (None, None));
        assert_eq!(none.mann_whitney_p, None);
    }

    /// `booking-pilot.md` §4.3's table, 20 % → 25 %, α = 0.05: n_bot / n_managers at 80 %
    /// power, and the totals at 90 %.
    #[test]
    fn sample_sizes_match_the_references_table() {
        for (share, expected, total_at_90) in [
            (0.5, (1094, 1094), 2928),
            (0.25, (717, 2151), 3868),
            (0.2, (670, 2680), 4525),
            (0.1, (591, 5319), 8010),
        ] {
            assert_eq!(
                sample_size(0.20, 0.25, share, 0.05, 0.8),
                Some(expected),
                "{share}"
            );
            let (bot, managers) = sample_size(0.20, 0.25, share, 0.05, 0.9).unwrap();
            assert_eq!(bot + managers, total_at_90, "{share} at 90 %");
        }
    }

    #[test]
    fn sample_size_refuses_what_it_cannot_size() {
        assert_eq!(sample_size(0.2, 0.2, 0.5, 0.05, 0.8), None);
        for share in [0.0, 1.0, 10.0, -0.1, f64::NAN] {
            assert_eq!(sample_size(0.2, 0.25, share, 0.05, 0.8), None, "{share}");
        }
        assert_eq!(sample_size(0.2, 1.2, 0.5, 0.05, 0.8), None);
        assert_eq!(sample_size(f64::NAN, 0.25, 0.5, 0.05, 0.8), None);
        assert_eq!(sample_size(0.2, 0.25, 0.5, 0.0, 0.8), None);
        assert_eq!(sample_size(0.2, 0.25, 0.5, 0.05, 1.0), None);
        // With equal arms the formula is symmetric: 25 % → 20 % needs what 20 % → 25 % does.
        assert_eq!(sample_size(0.25, 0.20, 0.5, 0.05, 0.8), Some((1094, 1094)));
    }

    /// §4.3's MDE table (20 % baseline, 80 % power, α = 0.05), ±0.1 pp.
    #[test]
    fn mde_matches_the_references_table() {
        for (clients, by_share) in [
            (300, [23.6, 15.5, 14.3]),
            (600, [16.4, 10.7, 9.9]),
            (1200, [11.4, 7.4, 6.8]),
            (2400, [8.0, 5.2, 4.8]),
        ] {
            for (share, expected) in [0.1, 0.3, 0.5].into_iter().zip(by_share) {
                assert_close(
                    mde_pp(clients, share, 0.20, 0.05, 0.8),
                    expected,
                    0.1,
                    &format!("{clients} clients at {share}"),
                );
            }
        }
        assert_eq!(mde_pp(0, 0.1, 0.2, 0.05, 0.8), None);
        assert_eq!(
            mde_pp(10, 0.1, 0.2, 0.05, 0.8),
            None,
            "too few for any effect"
        );
        assert_eq!(mde_pp(1000, 0.1, 1.0, 0.05, 0.8), None);
    }

    /// §4.4: N = 2 000 at 10 %: bot 180 → p 0.136, 170 → 0.025, 160 → 0.0029 (SciPy
    /// `chisquare`: 0.136037, 0.025347, 0.0028691).
    #[test]
    fn srm_matches_the_references_examples() {
        for (bot, expected) in [(180.0, 0.136_037), (170.0, 0.025_347), (160.0, 0.002_869_1)] {
            assert_close(
                srm_p(bot, 2000.0 - bot, 200.0, 1800.0),
                expected,
                1e-6,
                &format!("bot {bot}"),
            );
            assert_close(
                srm_p(bot, 2000.0 - bot, 0.1, 0.9),
                expected,
                1e-6,
                &format!("bot {bot}, shares"),
            );
        }
        assert!(srm_p(160.0, 1840.0, 200.0, 1800.0).unwrap() > SRM_ALARM);
        assert!(srm_p(140.0, 1860.0, 200.0, 1800.0).unwrap() < SRM_ALARM);
        assert_eq!(srm_p(10.0, 90.0, 0.0, 100.0), None);
        assert_eq!(srm_p(0.0, 0.0, 10.0, 90.0), None);
        assert_eq!(srm_p(f64::NAN, 90.0, 10.0, 90.0), None);
    }

    fn comparison_with_corrected(low: f64, high: f64) -> ProportionComparison {
        ProportionComparison {
            corrected_low_pp: Some(low),
            corrected_high_pp: Some(high),
            ..compare_rates(rate(25, 100), rate(180, 900), 1)
        }
    }

    #[test]
    fn the_verdict_reads_the_corrected_intervals() {
        let up = comparison_with_corrected(0.5, 9.0);
        let down = comparison_with_corrected(-9.0, -0.5);
        let across = comparison_with_corrected(-3.0, 9.0);
        assert_eq!(verdict(&up, &across, 0.1), Verdict::Better);
        assert_eq!(
            verdict(&across, &up, 0.1),
            Verdict::Better,
            "qualified alone"
        );
        assert_eq!(verdict(&down, &across, 0.1), Verdict::Worse);
        assert_eq!(verdict(&up, &down, 0.1), Verdict::Worse, "a worse KPI wins");
        assert!(matches!(
            verdict(&across, &across, 0.1),
            Verdict::Unclear { .. }
        ));
    }

    /// §4.1's example, unclear at 10 %: planned for the observed +5 pp at α = 0.05/3 and 80 %
    /// power, sample_size(0.20, 0.25, 0.1) = 785 + 7 065 = 7 850 (Python, §4.3's formula),
    /// less the 1 000 clients in: 6 850. With +0.5 pp observed the plan is +5 pp over the
    /// managers' rate; without managers, over 20 %.
    #[test]
    fn an_unclear_verdict_says_how_many_more_clients() {
        let conversion = compare_rates(rate(25, 100), rate(180, 900), 1);
        let qualified = compare_rates(rate(50, 100), rate(450, 900), 1);
        assert_eq!(
            verdict(&conversion, &qualified, 0.1),
            Verdict::Unclear {
                more_clients: Some(6850)
            }
        );
        let flat = compare_rates(rate(201, 1000), rate(1800, 9000), 1);
        let planned = sample_size(0.20, 0.25, 0.1, 0.05 / 3.0, 0.8).unwrap();
        assert_eq!(
            verdict(&flat, &qualified, 0.1),
            Verdict::Unclear {
                more_clients: Some((planned.0 + planned.1).saturating_sub(10_000))
            }
        );
        let empty = compare_rates(rate(0, 0), rate(0, 0), 1);
        assert_eq!(
            verdict(&empty, &empty, 0.1),
            Verdict::Unclear {
                more_clients: Some(7850)
            }
        );
        assert_eq!(
            verdict(&empty, &empty, 10.0),
            Verdict::Unclear { more_clients: None },
            "a share in percent is not computable"
        );
    }

    #[test]
    fn the_verdict_reads_in_russian() {
        assert_eq!(verdict_text(&Verdict::Better), "бот лучше");
        assert_eq!(verdict_text(&Verdict::Worse), "бот хуже");
        for (n, text) in [
            (5910, "пока не ясно: нужно ещё ~5 910 клиентов"),
            (1, "пока не ясно: нужно ещё ~1 клиент"),
            (3, "пока не ясно: нужно ещё ~3 клиента"),
            (11, "пока не ясно: нужно ещё ~11 клиентов"),
            (21, "пока не ясно: нужно ещё ~21 клиент"),
            (112, "пока не ясно: нужно ещё ~112 клиентов"),
            (1_234_567, "пока не ясно: нужно ещё ~1 234 567 клиентов"),
        ] {
            let v = Verdict::Unclear {
                more_clients: Some(n),
            };
            assert_eq!(verdict_text(&v), text, "{n}");
        }
        for more_clients in [None, Some(0)] {
            assert_eq!(
                verdict_text(&Verdict::Unclear { more_clients }),
                "пока не ясно"
            );
        }
    }

    /// One simulated pilot: 6 000 clients, 10 % to the bot, binomial counts.
    fn simulated_verdict(seed: u64, bot_conversion: f64) -> Verdict {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut draw = |n: u64, p: f64| Binomial::new(p, n).unwrap().sample(&mut rng);
        let n_bot = draw(6000, 0.1);
        let n_managers = 6000 - n_bot;
        let conversion = compare_rates(
            rate(draw(n_bot, bot_conversion), n_bot),
            rate(draw(n_managers, 0.20), n_managers),
            seed,
        );
        let qualified = compare_rates(
            rate(draw(n_bot, 0.5), n_bot),
            rate(draw(n_managers, 0.5), n_managers),
            seed,
        );
        verdict(&conversion, &qualified, 0.1)
    }

    #[test]
    fn an_a_a_pilot_is_unclear_in_at_least_95_percent_of_seeds() {
        let unclear = (0..200)
            .filter(|&seed| matches!(simulated_verdict(seed, 0.20), Verdict::Unclear { .. }))
            .count();
        eprintln!("A/A: unclear in {unclear} of 200");
        assert!(unclear >= 190, "unclear in {unclear} of 200");
    }

    #[test]
    fn a_bot_converting_25_against_20_is_better_in_most_seeds() {
        let better = (0..200)
            .filter(|&seed| simulated_verdict(seed, 0.25) == Verdict::Better)
            .count();
        eprintln!("25 vs 20: better in {better} of 200");
        assert!(better > 100, "better in {better} of 200");
    }

    fn any_rate() -> impl Strategy<Value = Rate> {
        prop_oneof![0..=20u64, 0..=1_000_000u64]
            .prop_flat_map(|n| {
                let x = prop_oneof![0..=n.min(12), n.saturating_sub(12)..=n, 0..=n];
                (x, Just(n))
            })
            .prop_map(|(x, n)| Rate { x, n })
    }

    fn no_nan_in(c: &ProportionComparison) -> bool {
        let pair = |v: Option<(f64, f64)>| v.into_iter().flat_map(|(a, b)| [a, b]);
        let values = [
            c.diff_pp,
            c.ci_low_pp,
            c.ci_high_pp,
            c.p_value,
            c.lift,
            c.chance_bot_better,
            c.corrected_low_pp,
            c.corrected_high_pp,
        ];
        values
            .into_iter()
            .flatten()
            .chain(pair(c.bot_ci))
            .chain(pair(c.managers_ci))
            .chain(pair(c.lift_ci))
            .all(f64::is_finite)
    }

    fn any_time() -> impl Strategy<Value = f64> {
        prop_oneof![
            0.0..100_000.0f64,
            (0u32..600).prop_map(f64::from),
            proptest::num::f64::NORMAL | proptest::num::f64::ZERO | proptest::num::f64::SUBNORMAL,
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn comparisons_never_panic_or_give_nan(bot in any_rate(), managers in any_rate(), seed: u64) {
            let c = compare_rates(bot, managers, seed);
            prop_assert!(no_nan_in(&c), "{c:?}");
            for p in [c.p_value, c.chance_bot_better].into_iter().flatten() {
                prop_assert!((0.0..=1.0).contains(&p), "{c:?}");
            }
            if let (Some(low), Some(d), Some(high)) = (c.ci_low_pp, c.diff_pp, c.ci_high_pp) {
                prop_assert!(low <= d + 1e-9 && d <= high + 1e-9, "{c:?}");
            }
            let v = verdict(&c, &c, 0.1);
            prop_assert!(!verdict_text(&v).is_empty());
        }

        #[test]
        fn impossible_counts_never_panic(x: u64, n: u64, confidence: f64, seed: u64) {
            let c = compare_rates(Rate { x, n }, Rate { x: n, n: x }, seed);
            prop_assert!(no_nan_in(&c), "{c:?}");
            let huge = Rate { x: x.min(n), n: x.max(n) };
            let c = compare_rates(huge, Rate { x: huge.x / 2, n: huge.n / 3 + huge.x / 2 }, seed);
            prop_assert!(no_nan_in(&c), "{c:?}");
            if let Some((low, high)) = wilson(Rate { x, n }, confidence) {
                prop_assert!((0.0..=1.0).contains(&low) && low <= high && high <= 1.0);
            }
        }

        #[test]
        fn srm_never_panics_or_gives_nan(
            a in proptest::num::f64::ANY, b in proptest::num::f64::ANY,
            c in proptest::num::f64::ANY, d in proptest::num::f64::ANY,
        ) {
            if let Some(p) = srm_p(a, b, c, d) {
                prop_assert!((0.0..=1.0).contains(&p));
            }
        }

        #[test]
        fn planning_never_panics_or_gives_nan(
            p_managers in prop_oneof![0.0..=1.0f64, proptest::num::f64::ANY],
            p_bot in prop_oneof![0.0..=1.0f64, proptest::num::f64::ANY],
            share in prop_oneof![0.0..=1.0f64, proptest::num::f64::ANY],
            alpha in 0.0..=1.0f64,
            power in 0.0..=1.0f64,
            clients: u64,
        ) {
            let _ = sample_size(p_managers, p_bot, share, alpha, power);
            if let Some(mde) = mde_pp(clients, share, p_managers, alpha, power) {
                prop_assert!(mde.is_finite() && mde > 0.0);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn time_comparisons_never_panic_or_give_nan(
            bot in proptest::collection::vec(any_time(), 0..60),
            managers in proptest::collection::vec(any_time(), 0..60),
            seed: u64,
        ) {
            let c = compare_times(&bot, &managers, seed);
            for s in [&c.bot, &c.managers] {
                for v in [s.median, s.p90, s.mean, s.within_60s].into_iter().flatten() {
                    prop_assert!(v.is_finite(), "{c:?}");
                }
            }
            if let Some(p) = c.mann_whitney_p {
                prop_assert!((0.0..=1.0).contains(&p), "{c:?}");
            }
            for v in c.median_diff.into_iter().chain(c.median_diff_ci.into_iter().flat_map(|(a, b)| [a, b])) {
                prop_assert!(v.is_finite(), "{c:?}");
            }
        }
    }
}
